"""Several files in one request: `POST /v1/files/batch` announces up to 10 uploads, `POST /v1/files/complete`
completes them and `GET /v1/files/downloads` gives their download links, each all or none; one quota check for
the total and an Idempotency-Key for the batch. On PostgreSQL + Redis with moto (and the JuiceFS gateway where
moto is lenient); the verification tasks are read from the real Redis queue."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from soa_platform.files.models import File
from soa_platform.files.storage import CompletedPart
from soa_platform.identity.models import Role
from tests.platform.files.conftest import (
    TenantFactory,
    announce,
    channel_with,
    post_with_files,
    transfer,
    uploaded_and_verified,
    verify,
)
from tests.platform.files.test_files_api import _part_size
from tests.platform.harness import Tenant, User
from tests.support.s3_servers import S3Endpoint

VERIFY, VERIFY_MANY = "soa.files.verify", "soa.files.verify_many"


def _entry(name: str, size: int, content_type: str = "text/plain") -> dict[str, Any]:
    return {"filename": name, "content_type": content_type, "size": size}


async def _announce_batch(tenant: Tenant, user: User, files: list[dict[str, Any]],
                          key: str | None = None) -> httpx.Response:  # fmt: skip
    headers = {**user.headers, **({"Idempotency-Key": key} if key else {})}
    return await tenant.client.post("/v1/files/batch", json={"files": files}, headers=headers)


async def _complete_batch(tenant: Tenant, user: User, items: list[dict[str, Any]]) -> httpx.Response:
    return await tenant.client.post("/v1/files/complete", json={"files": items}, headers=user.headers)


async def _usage(tenant: Tenant) -> dict[str, int]:
    admin = await tenant.user("root", Role.admin)
    response = await tenant.client.get("/v1/admin/files/usage", headers=admin.headers)
    return dict(response.json()["database"])


async def _queued_verifications(redis_url: str) -> list[int]:
    """File ids of the verifications waiting in the broker's default queue (this test's Redis db): one
    `soa.files.verify` per file, or one `soa.files.verify_many` for several."""
    client = aioredis.from_url(redis_url)
    try:
        raw = await client.lrange("celery", 0, -1)
    finally:
        await client.aclose()
    ids = []
    for item in raw:
        message = json.loads(item)
        args, _, _ = json.loads(base64.b64decode(message["body"]))
        if message["headers"]["task"] == VERIFY:
            ids.append(int(args[0]))
        elif message["headers"]["task"] == VERIFY_MANY:
            ids += [int(file_id) for file_id in args[0]]
    return sorted(ids)


async def test_a_batch_is_announced_uploaded_completed_and_verified(moto_tenant: Tenant, redis_url: str) -> None:
    tenant = moto_tenant
    owner = await tenant.user()
    contents = [b"first file\n" * 100, b"second file\n" * 200, b"%PDF-1.4\n" + bytes(range(256)) * (21 * 1024 + 7)]
    entries = [_entry("a.txt", len(contents[0])), _entry("b.txt", len(contents[1])),
               _entry("scan.pdf", len(contents[2]), "application/pdf")]  # fmt: skip

    async with _part_size(tenant, 5):  # the third is a two-part multipart upload
        announced = await _announce_batch(tenant, owner, entries)
        files = announced.json()["files"]
        items: list[dict[str, Any]] = []
        for file, data in zip(files, contents, strict=True):
            plan = file["upload"]
            if plan["kind"] == "single":
                assert (await transfer(tenant, plan["request"], data)).status_code == 200
                items.append({"id": file["id"]})
                continue
            parts = []
            for part in plan["parts"]:
                start = (part["number"] - 1) * plan["part_size"]
                sent = await transfer(tenant, part, data[start : start + plan["part_size"]])
                parts.append({"number": part["number"], "etag": sent.headers["ETag"]})
            items.append({"id": file["id"], "parts": parts})
        completed = await _complete_batch(tenant, owner, items)

    assert announced.status_code == 201
    assert [f["filename"] for f in files] == ["a.txt", "b.txt", "scan.pdf"]
    assert [f["upload"]["kind"] for f in files] == ["single", "single", "multipart"]
    assert completed.status_code == 200, completed.text
    assert [f["id"] for f in completed.json()["files"]] == [f["id"] for f in files]
    assert all(f["status"] == "pending" and f["completed_at"] for f in completed.json()["files"])
    assert await _queued_verifications(redis_url) == sorted(f["id"] for f in files)
    assert [await verify(tenant, f["id"]) for f in files] == ["available"] * 3
    for file, data in zip(files, contents, strict=True):
        link = await tenant.client.get(f"/v1/files/{file['id']}/download", headers=owner.headers)
        assert (await transfer(tenant, link.json())).content == data


async def test_a_batch_retry_with_the_same_key_creates_nothing_new(moto_tenant: Tenant) -> None:
    tenant = moto_tenant
    owner = await tenant.user()
    entries = [_entry("a.txt", 10), _entry("b.txt", 20)]

    first = await _announce_batch(tenant, owner, entries, key="drop-1")
    again = await asyncio.gather(*(_announce_batch(tenant, owner, entries, key="drop-1") for _ in range(3)))
    other_files = await _announce_batch(tenant, owner, [_entry("a.txt", 10), _entry("c.txt", 20)], key="drop-1")
    more_files = await _announce_batch(tenant, owner, [*entries, _entry("c.txt", 5)], key="drop-1")
    single_same_key = await announce(tenant, owner, "a.txt", "text/plain", 10, key="drop-1")

    ids = [f["id"] for f in first.json()["files"]]
    assert first.status_code == 201
    assert {r.status_code for r in again} == {200}
    assert all([f["id"] for f in r.json()["files"]] == ids for r in again)
    assert all(f["upload"]["kind"] == "single" for r in again for f in r.json()["files"])
    assert (other_files.status_code, more_files.status_code) == (409, 409)
    assert more_files.json()["detail"] == "this idempotency key was already used for a different set of files"
    assert single_same_key.status_code == 201  # a batch's key and a single announcement's never meet
    assert await _usage(tenant) == {"bytes": 40, "objects": 3}


async def test_the_quota_counts_a_batch_as_a_whole_and_a_refusal_creates_nothing(
    s3_tenant: TenantFactory, moto_s3: S3Endpoint
) -> None:
    async with s3_tenant(moto_s3, storage_capacity="64Ki") as tenant:
        owner = await tenant.user()
        over = await _announce_batch(tenant, owner, [_entry(f"{n}.txt", 30_000) for n in range(3)])
        usage_after_refusal = await _usage(tenant)
        fits = await _announce_batch(tenant, owner, [_entry(f"{n}.txt", 30_000) for n in range(2)])

    assert over.status_code == 403
    assert over.json()["error"] == "quota_exceeded"
    assert over.json()["detail"].endswith("64.0 KiB left, these 3 files need 87.9 KiB")
    assert usage_after_refusal == {"bytes": 0, "objects": 0}
    assert fits.status_code == 201


async def test_one_file_over_the_size_limit_refuses_the_whole_batch(moto_tenant: Tenant) -> None:
    tenant = moto_tenant
    owner = await tenant.user()
    limit = tenant.settings.storage_max_upload_bytes

    response = await _announce_batch(tenant, owner, [_entry("ok.txt", 10), _entry("huge.bin", limit + 1)])

    assert response.status_code == 413
    assert response.json()["detail"] == "files are limited to 100.0 MiB (huge.bin is 100.0 MiB)"
    assert await _usage(tenant) == {"bytes": 0, "objects": 0}


async def test_a_batch_completes_all_or_none(moto_tenant: Tenant, redis_url: str) -> None:
    tenant = moto_tenant
    owner, other = await tenant.user("amina"), await tenant.user("bilal")
    uploaded, missing = (await _announce_batch(tenant, owner, [_entry("a.txt", 3), _entry("b.txt", 3)])).json()["files"]
    theirs = (await announce(tenant, other, "c.txt", "text/plain", 3)).json()
    await transfer(tenant, uploaded["upload"]["request"], b"abc")

    not_uploaded = await _complete_batch(tenant, owner, [{"id": uploaded["id"]}, {"id": missing["id"]}])
    not_theirs = await _complete_batch(tenant, owner, [{"id": uploaded["id"]}, {"id": theirs["id"]}])
    state = (await tenant.client.get(f"/v1/files/{uploaded['id']}", headers=owner.headers)).json()
    queued_after_refusals = await _queued_verifications(redis_url)
    await transfer(tenant, missing["upload"]["request"], b"xyz")
    done = await _complete_batch(tenant, owner, [{"id": uploaded["id"]}, {"id": missing["id"]}])
    again = await _complete_batch(tenant, owner, [{"id": missing["id"]}, {"id": uploaded["id"]}])

    assert not_uploaded.status_code == 409
    assert not_uploaded.json()["detail"] == (
        f"nothing was uploaded yet (files {missing['id']}): PUT the bytes to the upload URL, then complete"
    )
    assert not_theirs.status_code == 404
    assert not_theirs.json()["detail"] == f"no such file: {theirs['id']}"
    assert state["completed_at"] is None  # the refused batches completed nothing
    assert queued_after_refusals == []
    assert done.status_code == 200
    assert again.status_code == 200  # completing again changes nothing...
    assert [f["id"] for f in again.json()["files"]] == [missing["id"], uploaded["id"]]  # ...in the order asked
    assert [f["completed_at"] for f in again.json()["files"]] == [f["completed_at"] for f in done.json()["files"]][::-1]


async def test_a_multipart_upload_assembled_by_an_uncommitted_attempt_still_completes(juicefs_tenant: Tenant) -> None:
    """The store assembled the parts, then the transaction that would have recorded it did not commit: the
    client's retry must complete, not fail on an upload id the store no longer knows (on the JuiceFS gateway:
    moto accepts completing an upload twice)."""
    tenant = juicefs_tenant
    owner = await tenant.user()
    data = bytes(range(256)) * (21 * 1024 + 7)
    async with _part_size(tenant, 5):
        created = (await announce(tenant, owner, "big.bin", "application/octet-stream", len(data))).json()
        plan, parts = created["upload"], []
        for part in plan["parts"]:
            start = (part["number"] - 1) * plan["part_size"]
            sent = await transfer(tenant, part, data[start : start + plan["part_size"]])
            parts.append({"number": part["number"], "etag": sent.headers["ETag"]})
        async with tenant.platform.db.sessions() as session:
            row = await session.get(File, created["id"])
        assert row is not None
        assert row.upload_id is not None
        assert tenant.platform.storage is not None
        await tenant.platform.storage.complete_multipart(
            row.storage_key, row.upload_id, [CompletedPart(p["number"], p["etag"]) for p in parts]
        )  # the first attempt's store call; its commit is lost
        retry = await _complete_batch(tenant, owner, [{"id": created["id"], "parts": parts}])
        wrong = await tenant.client.post(f"/v1/files/{created['id']}/complete", headers=owner.headers,
                                         json={"parts": parts[:1]})  # fmt: skip

    assert retry.status_code == 200, retry.text
    assert retry.json()["files"][0]["completed_at"] is not None
    assert await verify(tenant, created["id"]) == "available"
    assert wrong.status_code == 200  # decided already: nothing to check or change


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/files/batch", {"files": []}, "files"),
        ("/v1/files/batch", {"files": [_entry(f"{n}.txt", 1) for n in range(11)]}, "files"),
        ("/v1/files/batch", {"files": [_entry("a/b.txt", 1)]}, "filename"),
        ("/v1/files/batch", {"files": [_entry("a.txt", 0)]}, "size"),
        ("/v1/files/batch", {"files": [_entry("a.txt", 1)], "extra": 1}, "extra"),
        ("/v1/files/complete", {"files": []}, "files"),
        ("/v1/files/complete", {"files": [{"id": 1}, {"id": 1}]}, "files"),
        ("/v1/files/complete", {"files": [{"id": 0}]}, "id"),
        ("/v1/files/complete", {"files": [{"id": 1, "parts": [{"number": 0, "etag": "x"}]}]}, "number"),
    ],
)
async def test_malformed_batches_are_refused_precisely(
    moto_tenant: Tenant, path: str, body: dict[str, Any], field: str
) -> None:
    owner = await moto_tenant.user()

    response = await moto_tenant.client.post(path, json=body, headers=owner.headers)

    assert response.status_code == 422
    assert response.json()["error"] == "invalid_payload"
    assert field in {str(part) for problem in response.json()["problems"] for part in problem["loc"]}
    assert await _usage(moto_tenant) == {"bytes": 0, "objects": 0}


async def test_batch_routes_need_a_token_and_a_well_formed_key(moto_tenant: Tenant) -> None:
    owner = await moto_tenant.user()
    client, body = moto_tenant.client, {"files": [_entry("a.txt", 1)]}

    anonymous = [await client.post("/v1/files/batch", json=body),
                 await client.post("/v1/files/complete", json={"files": [{"id": 1}]})]  # fmt: skip
    too_long_key = await client.post("/v1/files/batch", json=body,
                                     headers={**owner.headers, "Idempotency-Key": "k" * 97})  # fmt: skip

    assert [r.status_code for r in anonymous] == [401, 401]
    assert too_long_key.status_code == 422


async def test_a_member_gets_the_links_of_a_messages_attachments_in_one_request(moto_tenant: Tenant) -> None:
    tenant = moto_tenant
    owner, member, outsider = await tenant.user("amina"), await tenant.user("bilal"), await tenant.user("chen")
    first = await uploaded_and_verified(tenant, owner, b"first\n" * 50, filename="one.txt")
    second = await uploaded_and_verified(tenant, owner, b"second\n" * 50, filename="two.txt")
    own_unattached = await uploaded_and_verified(tenant, owner, b"mine\n", filename="mine.txt")
    pending = (await announce(tenant, owner, "later.txt", "text/plain", 5)).json()
    channel = await channel_with(tenant, owner, member)
    await post_with_files(tenant, owner, channel, [second["id"], first["id"]])
    ids = [second["id"], first["id"]]

    def query(*file_ids: int) -> str:
        return "/v1/files/downloads?" + "&".join(f"id={i}" for i in file_ids)

    member_links = await tenant.client.get(query(*ids, ids[0]), headers=member.headers)
    fetched = [await transfer(tenant, link) for link in member_links.json()["downloads"]]
    owner_links = await tenant.client.get(query(own_unattached["id"], first["id"]), headers=owner.headers)
    not_shown = await tenant.client.get(query(first["id"], own_unattached["id"]), headers=member.headers)
    outsiders = await tenant.client.get(query(*ids), headers=outsider.headers)
    not_ready = await tenant.client.get(query(first["id"], pending["id"]), headers=owner.headers)
    anonymous = await tenant.client.get(query(*ids))

    assert member_links.status_code == 200
    assert [link["file_id"] for link in member_links.json()["downloads"]] == ids  # in order, each once
    assert [response.content for response in fetched] == [b"second\n" * 50, b"first\n" * 50]
    assert owner_links.status_code == 200
    assert (not_shown.status_code, not_shown.json()["detail"]) == (404, f"no such file: {own_unattached['id']}")
    assert (outsiders.status_code, outsiders.json()["detail"]) == (404, f"no such file: {ids[0]}")
    assert not_ready.status_code == 409
    assert not_ready.json()["detail"] == (
        f"file {pending['id']}: the file is not available yet: it is being uploaded or verified"
    )
    assert anonymous.status_code == 401


@pytest.mark.parametrize(
    "query", ["", "?id=0", "?id=abc", "?" + "&".join(f"id={n}" for n in range(1, 12)), f"?id={2**62 + 1}"]
)
async def test_malformed_download_batches_are_refused_precisely(moto_tenant: Tenant, query: str) -> None:
    owner = await moto_tenant.user()

    response = await moto_tenant.client.get(f"/v1/files/downloads{query}", headers=owner.headers)

    assert response.status_code == 422
    assert response.json()["error"] == "invalid_payload"
    assert "id" in {str(part) for problem in response.json()["problems"] for part in problem["loc"]}


async def test_the_embedded_local_driver_serves_batches_too(local_tenant: Tenant) -> None:
    tenant = local_tenant
    owner = await tenant.user()
    contents = [b"alpha\n" * 10, b"beta\n" * 20]

    files = (await _announce_batch(tenant, owner, [_entry("a.txt", 60), _entry("b.txt", 100)])).json()["files"]
    sent = [await transfer(tenant, f["upload"]["request"], data) for f, data in zip(files, contents, strict=True)]
    completed = await _complete_batch(tenant, owner, [{"id": f["id"]} for f in files])
    verdicts = [await verify(tenant, f["id"]) for f in files]
    links = await tenant.client.get(f"/v1/files/downloads?id={files[0]['id']}&id={files[1]['id']}",
                                    headers=owner.headers)  # fmt: skip
    fetched = [await transfer(tenant, link) for link in links.json()["downloads"]]

    assert all(f["upload"]["request"]["url"].startswith(tenant.settings.public_url) for f in files)
    assert [r.status_code for r in sent] == [200, 200]
    assert completed.status_code == 200
    assert verdicts == ["available", "available"]
    assert [r.content for r in fetched] == contents
