"""Files through the api: announce, upload to the store, complete, verify, attach, download; who may do what;
limits, quota and precise refusals. On PostgreSQL + Redis with moto (the S3 API surface) or the JuiceFS
gateway (which checks presigned signatures and expiry), and embedded on SQLite with the local driver."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from soa_platform.files import service
from soa_platform.files.models import File
from soa_platform.identity.models import Role
from soa_platform.messaging.models import Message
from tests.platform.files.conftest import (
    TenantFactory,
    announce,
    channel_with,
    post_with_files,
    transfer,
    upload,
    uploaded_and_verified,
    user_row,
    verify,
)
from tests.platform.harness import Tenant, User
from tests.support.s3_servers import S3Endpoint

REPORT = b"Quarterly report\n" + b"figures, " * 500 + b"\n"
MIB = 1024 * 1024


async def _download(tenant: Tenant, user: User, file_id: int) -> httpx.Response:
    return await tenant.client.get(f"/v1/files/{file_id}/download", headers=user.headers)


async def _shared_file(tenant: Tenant) -> tuple[User, User, dict[str, Any], int]:
    """An owner's verified file attached to a message in a channel with a member: (owner, member, file, message)."""
    owner, member = await tenant.user("amina"), await tenant.user("bilal")
    file = await uploaded_and_verified(tenant, owner, REPORT, "text/plain", "report.txt")
    channel = await channel_with(tenant, owner, member)
    message_id = await post_with_files(tenant, owner, channel, [file["id"]])
    return owner, member, file, message_id


async def test_a_member_downloads_the_bytes_the_owner_uploaded(juicefs_tenant: Tenant) -> None:
    tenant = juicefs_tenant
    _, member, file, _ = await _shared_file(tenant)
    assert (file["status"], file["size"], file["sha256"]) == (
        "available",
        len(REPORT),
        hashlib.sha256(REPORT).hexdigest(),
    )
    assert file["detected_type"] == "text/plain"

    metadata = await tenant.client.get(f"/v1/files/{file['id']}", headers=member.headers)
    link = await _download(tenant, member, file["id"])
    fetched = await transfer(tenant, link.json())

    assert metadata.status_code == 200
    assert metadata.json()["filename"] == "report.txt"
    assert link.status_code == 200
    assert link.json()["method"] == "GET"
    assert fetched.status_code == 200
    assert fetched.content == REPORT
    assert fetched.headers["content-disposition"].startswith("attachment")
    assert "report.txt" in fetched.headers["content-disposition"]


async def test_a_non_member_can_neither_see_nor_download_a_shared_file(moto_tenant: Tenant) -> None:
    tenant = moto_tenant
    _, _, file, _ = await _shared_file(tenant)
    outsider = await tenant.user("chen")

    for url in (f"/v1/files/{file['id']}", f"/v1/files/{file['id']}/download"):
        response = await tenant.client.get(url, headers=outsider.headers)
        assert response.status_code == 404, url
        assert response.json()["detail"] == "no such file"


async def test_the_conversation_page_shows_each_message_with_its_attachments(moto_tenant: Tenant) -> None:
    tenant = moto_tenant
    _, member, file, message_id = await _shared_file(tenant)

    page = await tenant.client.get(f"/v1/conversations/{await _channel_of(tenant, message_id)}/messages",
                                   headers=member.headers)  # fmt: skip

    shown = {m["id"]: m["attachments"] for m in page.json()["items"]}
    assert shown[message_id] == [
        {"file_id": file["id"], "filename": "report.txt", "content_type": "text/plain", "size": len(REPORT),
         "position": 0}
    ]  # fmt: skip


async def test_a_message_cannot_carry_files_that_are_not_the_authors(moto_tenant: Tenant) -> None:
    tenant = moto_tenant
    _, member, file, message_id = await _shared_file(tenant)
    channel = await _channel_of(tenant, message_id)

    response = await tenant.client.post(
        f"/v1/conversations/{channel}/messages",
        json={"body": "mine now", "idempotency_key": "steal", "file_ids": [file["id"]]}, headers=member.headers,
    )  # fmt: skip
    page = await tenant.client.get(f"/v1/conversations/{channel}/messages", headers=member.headers)

    assert response.status_code == 400
    assert response.json()["detail"] == f"file {file['id']} is not one of your files"
    assert [m["id"] for m in page.json()["items"]] == [message_id]  # nothing half-written


async def test_deleting_a_message_removes_its_files_and_their_objects(moto_tenant: Tenant) -> None:
    tenant = moto_tenant
    owner, member, file, message_id = await _shared_file(tenant)
    async with tenant.platform.db.sessions() as session:
        key = (await session.get(File, file["id"])).storage_key  # type: ignore[union-attr]
    assert tenant.platform.storage is not None
    assert await tenant.platform.storage.stat(key) is not None

    assert (await tenant.client.delete(f"/v1/messages/{message_id}", headers=owner.headers)).status_code == 204

    assert (await _download(tenant, member, file["id"])).status_code == 404
    assert (await _download(tenant, owner, file["id"])).status_code == 404
    assert await tenant.platform.storage.stat(key) is None


async def _channel_of(tenant: Tenant, message_id: int) -> int:
    async with tenant.platform.db.sessions() as session:
        message = await session.get(Message, message_id)
    assert message is not None
    return message.conversation_id


async def test_a_token_of_another_tenant_is_refused(s3_tenant: TenantFactory, moto_s3: S3Endpoint) -> None:
    async with s3_tenant(moto_s3, "alpha") as alpha, s3_tenant(moto_s3, "beta") as beta:
        _, _, file, _ = await _shared_file(alpha)
        stranger = await beta.user("dara")

        for method, url in (("GET", f"/v1/files/{file['id']}"), ("GET", f"/v1/files/{file['id']}/download"),
                            ("DELETE", f"/v1/files/{file['id']}"), ("POST", "/v1/files")):  # fmt: skip
            response = await alpha.client.request(method, url, headers=stranger.headers, json={})
            assert response.status_code == 401, (method, url)


async def test_tampered_and_expired_download_urls_are_refused_by_the_store(juicefs_tenant: Tenant) -> None:
    tenant = juicefs_tenant
    owner = await tenant.user("amina")
    first = await uploaded_and_verified(tenant, owner, REPORT, filename="one.txt")
    second = await uploaded_and_verified(tenant, owner, b"another file\n", filename="two.txt")
    link = (await _download(tenant, owner, first["id"])).json()
    other = (await _download(tenant, owner, second["id"])).json()
    assert (await transfer(tenant, link)).content == REPORT

    # the path of one file with the signature of another
    parts, other_path = urlsplit(link["url"]), urlsplit(other["url"]).path
    swapped = urlunsplit(parts._replace(path=other_path))
    # the response's file name changed after signing
    renamed = link["url"].replace("one.txt", "evil.html")
    assert renamed != link["url"]
    storage = tenant.platform.storage
    assert storage is not None
    async with tenant.platform.db.sessions() as session:
        from soa_platform.files.models import File

        row = await session.get(File, first["id"])
        assert row is not None
    short = storage.presign_get(row.storage_key, expires=timedelta(seconds=1), filename="one.txt",
                                content_type="text/plain")  # fmt: skip
    await asyncio.sleep(2.1)

    async with httpx.AsyncClient() as client:
        for url in (swapped, renamed, short.url):
            refused = await client.get(url)
            assert refused.status_code == 403, url
            assert REPORT not in refused.content


async def test_a_file_larger_than_the_upload_limit_is_refused(moto_tenant: Tenant) -> None:
    owner = await moto_tenant.user()
    limit = moto_tenant.settings.storage_max_upload_bytes

    response = await announce(moto_tenant, owner, "huge.bin", "application/octet-stream", limit + 1)

    assert response.status_code == 413
    assert response.json()["detail"] == "files are limited to 100.0 MiB"


async def test_the_quota_counts_pending_and_available_files(s3_tenant: TenantFactory, moto_s3: S3Endpoint) -> None:
    async with s3_tenant(moto_s3, storage_capacity="64Ki") as tenant:
        owner = await tenant.user()
        available = await uploaded_and_verified(tenant, owner, b"x" * 30_000, filename="a.txt")
        pending = await announce(tenant, owner, "b.txt", "text/plain", 30_000)
        assert (available["status"], pending.status_code) == ("available", 201)

        over = await announce(tenant, owner, "c.txt", "text/plain", 6_000)
        fits = await announce(tenant, owner, "d.txt", "text/plain", 5_536)

    assert over.status_code == 403
    assert over.json()["error"] == "quota_exceeded"
    assert "quota of 64.0 KiB is used up: 5.4 KiB left, this file needs 5.9 KiB" in over.json()["detail"]
    assert fits.status_code == 201


async def test_deleted_and_rejected_files_free_their_quota(s3_tenant: TenantFactory, moto_s3: S3Endpoint) -> None:
    async with s3_tenant(moto_s3, storage_capacity="10Ki") as tenant:
        owner = await tenant.user()
        kept = await announce(tenant, owner, "a.txt", "text/plain", 8_000)
        refused = await announce(tenant, owner, "b.txt", "text/plain", 8_000)
        await tenant.client.delete(f"/v1/files/{kept.json()['id']}", headers=owner.headers)
        rejected = await uploaded_and_verified(
            tenant, owner, b"<html><body>hi</body></html>" * 200, "image/png", "x.png"
        )
        accepted = await announce(tenant, owner, "c.txt", "text/plain", 8_000)

    assert refused.status_code == 403
    assert rejected["status"] == "rejected"
    assert accepted.status_code == 201


async def test_a_retry_with_the_same_idempotency_key_returns_the_same_file(moto_tenant: Tenant) -> None:
    tenant = moto_tenant
    owner = await tenant.user()

    first = await announce(tenant, owner, "a.txt", "text/plain", 10, key="upload-1")
    again = await asyncio.gather(
        *(announce(tenant, owner, "a.txt", "text/plain", 10, key="upload-1") for _ in range(4))
    )
    changed = await announce(tenant, owner, "b.txt", "text/plain", 10, key="upload-1")

    assert first.status_code == 201
    assert {response.status_code for response in again} == {200}
    assert {response.json()["id"] for response in again} == {first.json()["id"]}
    assert again[0].json()["upload"]["kind"] == "single"
    assert changed.status_code == 409
    usage = await tenant.client.get("/v1/admin/files/usage", headers=(await tenant.user("root", Role.admin)).headers)
    assert usage.json()["database"] == {"bytes": 10, "objects": 1}


async def test_a_large_file_is_uploaded_in_parts(moto_tenant: Tenant) -> None:
    tenant = moto_tenant
    owner = await tenant.user()
    data = b"%PDF-1.4\n" + bytes(range(256)) * (21 * 1024 + 7)  # a bit over 5 MiB: two parts of the 5 MiB minimum

    async with _part_size(tenant, 5):
        file = await upload(tenant, owner, data, "application/pdf", "scan.pdf")
    status = await verify(tenant, file["id"])
    link = (await _download(tenant, owner, file["id"])).json()

    assert status == "available"
    assert (await transfer(tenant, link)).content == data


@asynccontextmanager
async def _part_size(tenant: Tenant, mib: int) -> AsyncIterator[None]:
    """Lower the multipart threshold of a running tenant for a while (settings are frozen: swap them)."""
    saved = tenant.platform.settings
    tenant.platform.settings = saved.model_copy(update={"storage_multipart_part_mib": mib})
    try:
        yield
    finally:
        tenant.platform.settings = saved


async def test_content_that_does_not_match_its_declared_type_is_rejected(moto_tenant: Tenant) -> None:
    tenant = moto_tenant
    owner = await tenant.user()
    page = b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>\n"

    file = await uploaded_and_verified(tenant, owner, page, "image/png", "cat.png")
    download = await _download(tenant, owner, file["id"])

    assert file["status"] == "rejected"
    assert file["reject_reason"] == "content does not match its declared type: declared image/png, found text/html"
    assert download.status_code == 409
    assert download.json()["detail"] == f"the file was rejected: {file['reject_reason']}"
    async with tenant.platform.db.sessions() as session:
        from soa_platform.files.models import File

        row = await session.get(File, file["id"])
    assert row is not None
    assert tenant.platform.storage is not None
    assert await tenant.platform.storage.stat(row.storage_key) is None  # its bytes are gone


async def test_a_size_other_than_declared_is_rejected(moto_tenant: Tenant) -> None:
    tenant = moto_tenant
    owner = await tenant.user()
    created = (await announce(tenant, owner, "a.txt", "text/plain", 100)).json()
    await transfer(tenant, created["upload"]["request"], b"only 19 bytes here\n")
    await tenant.client.post(f"/v1/files/{created['id']}/complete", headers=owner.headers)

    assert await verify(tenant, created["id"]) == "rejected"
    body = (await tenant.client.get(f"/v1/files/{created['id']}", headers=owner.headers)).json()
    assert body["reject_reason"] == "size mismatch: declared 100 bytes, received 19"


async def test_completing_twice_is_harmless_and_completing_early_is_refused(moto_tenant: Tenant) -> None:
    tenant = moto_tenant
    owner = await tenant.user()
    created = (await announce(tenant, owner, "a.txt", "text/plain", len(REPORT))).json()
    url = f"/v1/files/{created['id']}/complete"

    early = await tenant.client.post(url, headers=owner.headers)
    await transfer(tenant, created["upload"]["request"], REPORT)
    first = await tenant.client.post(url, headers=owner.headers)
    second = await tenant.client.post(url, headers=owner.headers)
    await verify(tenant, created["id"])
    third = await tenant.client.post(url, headers=owner.headers)

    assert early.status_code == 409
    assert early.json()["detail"] == "nothing was uploaded yet: PUT the bytes to the upload URL, then complete"
    assert (first.status_code, second.status_code, third.status_code) == (200, 200, 200)
    assert first.json()["completed_at"] == second.json()["completed_at"]
    assert third.json()["status"] == "available"
    retry = await announce(tenant, owner, "a.txt", "text/plain", len(REPORT))
    assert retry.json()["upload"]["kind"] == "single"  # a new announcement; the completed one offers no upload


async def test_only_the_owner_or_an_admin_deletes_and_deleting_twice_is_harmless(moto_tenant: Tenant) -> None:
    tenant = moto_tenant
    owner, member, file, _ = await _shared_file(tenant)
    admin = await tenant.user("root", Role.admin)
    assert tenant.platform.storage is not None
    usage_before = (await tenant.client.get("/v1/admin/files/usage", headers=admin.headers)).json()

    by_member = await tenant.client.delete(f"/v1/files/{file['id']}", headers=member.headers)
    by_admin = await tenant.client.delete(f"/v1/files/{file['id']}", headers=admin.headers)
    again = await tenant.client.delete(f"/v1/files/{file['id']}", headers=owner.headers)
    usage_after = (await tenant.client.get("/v1/admin/files/usage", headers=admin.headers)).json()
    audit = (await tenant.client.get("/v1/admin/audit?action=file.deleted", headers=admin.headers)).json()["items"]

    assert by_member.status_code == 403
    assert (by_admin.status_code, again.status_code) == (204, 204)
    assert (await tenant.client.get(f"/v1/files/{file['id']}", headers=owner.headers)).status_code == 404
    assert usage_before["storage"] == {"bytes": len(REPORT), "objects": 1}
    assert usage_after["database"] == {"bytes": 0, "objects": 0}
    assert usage_after["storage"] == {"bytes": 0, "objects": 0}
    assert [(event["actor_id"], event["target_id"]) for event in audit] == [(admin.id, str(file["id"]))]


async def test_attach_takes_only_the_users_own_available_files(moto_tenant: Tenant) -> None:
    tenant = moto_tenant
    owner, other = await tenant.user("amina"), await tenant.user("bilal")
    mine = await uploaded_and_verified(tenant, owner, REPORT)
    theirs = await uploaded_and_verified(tenant, other, REPORT)
    pending = (await announce(tenant, owner, "p.txt", "text/plain", 5)).json()
    channel = await channel_with(tenant, owner, other)
    message_id = await post_with_files(tenant, owner, channel, [])
    row = await user_row(tenant, owner)

    problems = {}
    for label, ids in (("foreign", [theirs["id"]]), ("pending", [pending["id"]]), ("unknown", [999_999]),
                       ("too many", list(range(1, 12)))):  # fmt: skip
        with pytest.raises(service.InvalidRequest) as refused:
            async with tenant.platform.db.unit_of_work() as uow:
                await service.attach(uow, row, message_id, channel, ids)
        problems[label] = refused.value.message
    async with tenant.platform.db.unit_of_work() as uow:
        await service.attach(uow, row, message_id, channel, [mine["id"], mine["id"]])
    async with tenant.platform.db.sessions() as session:
        rendered = await service.attachments_for(session, [message_id])

    assert problems == {
        "foreign": f"file {theirs['id']} is not one of your files",
        "pending": f"file {pending['id']} is pending: only available files can be attached",
        "unknown": "file 999999 is not one of your files",
        "too many": "a message has at most 10 attachments",
    }
    assert [(a.file_id, a.filename, a.position) for a in rendered[message_id]] == [(mine["id"], "notes.txt", 0)]


BAD_ANNOUNCEMENTS = [
    ({"filename": "../etc/passwd", "content_type": "text/plain", "size": 1}, 422, "filename"),
    ({"filename": "a\\b.txt", "content_type": "text/plain", "size": 1}, 422, "filename"),
    ({"filename": "report\u202etxt.exe", "content_type": "text/plain", "size": 1}, 422, "filename"),
    ({"filename": "line\nbreak.txt", "content_type": "text/plain", "size": 1}, 422, "filename"),
    ({"filename": "..", "content_type": "text/plain", "size": 1}, 422, "filename"),
    ({"filename": "x" * 256, "content_type": "text/plain", "size": 1}, 422, "filename"),
    ({"filename": "a.txt", "content_type": "text plain", "size": 1}, 422, "content_type"),
    ({"filename": "a.txt", "content_type": "text/plain", "size": 0}, 422, "size"),
    ({"filename": "a.txt", "content_type": "text/plain", "size": -5}, 422, "size"),
    ({"filename": "a.txt", "content_type": "text/plain", "size": 1, "owner_id": 1}, 422, "owner_id"),
    ({"filename": "a.txt", "size": 1}, 422, "content_type"),
]


@pytest.mark.parametrize(("body", "status", "field"), BAD_ANNOUNCEMENTS)
async def test_a_malformed_announcement_is_refused_precisely(
    moto_tenant: Tenant, body: dict[str, Any], status: int, field: str
) -> None:
    owner = await moto_tenant.user()

    response = await moto_tenant.client.post("/v1/files", json=body, headers=owner.headers)

    assert response.status_code == status
    assert response.json()["error"] == "invalid_payload"
    assert field in {str(part) for problem in response.json()["problems"] for part in problem["loc"]}


async def test_other_bad_requests_get_precise_4xx_answers(moto_tenant: Tenant) -> None:
    tenant = moto_tenant
    owner = await tenant.user()
    pending = (await announce(tenant, owner, "a.txt", "text/plain", 10)).json()
    client, headers = tenant.client, owner.headers

    cases = {
        "bad idempotency key": await client.post("/v1/files", json={"filename": "a", "content_type": "a/b", "size": 1},
                                                 headers={**headers, "Idempotency-Key": "white space"}),
        "no token": await client.post("/v1/files", json={"filename": "a", "content_type": "a/b", "size": 1}),
        "id zero": await client.get("/v1/files/0", headers=headers),
        "unknown id": await client.get("/v1/files/424242", headers=headers),
        "download while pending": await client.get(f"/v1/files/{pending['id']}/download", headers=headers),
        "parts for a single PUT": await client.post(f"/v1/files/{pending['id']}/complete", headers=headers,
                                                    json={"parts": [{"number": 1, "etag": "abc"}]}),
        "complete an unknown file": await client.post("/v1/files/424242/complete", headers=headers),
        "members only for usage": await client.get("/v1/admin/files/usage", headers=headers),
    }  # fmt: skip

    assert {name: response.status_code for name, response in cases.items()} == {
        "bad idempotency key": 422,
        "no token": 401,
        "id zero": 422,
        "unknown id": 404,
        "download while pending": 409,
        "parts for a single PUT": 400,
        "complete an unknown file": 404,
        "members only for usage": 403,
    }
    assert (
        cases["download while pending"].json()["detail"]
        == "the file is not available yet: it is being uploaded or verified"
    )


async def test_without_storage_every_files_route_says_it_is_disabled(storageless_tenant: Tenant) -> None:
    tenant = storageless_tenant
    owner = await tenant.user()
    admin = await tenant.user("root", Role.admin)

    responses = [
        await tenant.client.post(
            "/v1/files", json={"filename": "a", "content_type": "a/b", "size": 1}, headers=owner.headers
        ),
        await tenant.client.post("/v1/files/1/complete", headers=owner.headers),
        await tenant.client.post(
            "/v1/files/batch",
            json={"files": [{"filename": "a", "content_type": "a/b", "size": 1}]},
            headers=owner.headers,
        ),
        await tenant.client.post("/v1/files/complete", json={"files": [{"id": 1}]}, headers=owner.headers),
        await tenant.client.get("/v1/files/1", headers=owner.headers),
        await tenant.client.get("/v1/files/1/download", headers=owner.headers),
        await tenant.client.delete("/v1/files/1", headers=owner.headers),
        await tenant.client.get("/v1/admin/files/usage", headers=admin.headers),
    ]

    assert [(r.status_code, r.json()["detail"]) for r in responses] == [(404, service.STORAGE_DISABLED)] * 8


async def test_the_embedded_local_driver_serves_the_whole_flow(local_tenant: Tenant) -> None:
    tenant = local_tenant
    owner, member = await tenant.user("amina"), await tenant.user("bilal")
    data = b"%PDF-1.4\n" + b"local bytes " * 1000

    file = await uploaded_and_verified(tenant, owner, data, "application/pdf", "minutes.pdf")
    channel = await channel_with(tenant, owner, member)
    await post_with_files(tenant, owner, channel, [file["id"]])
    link = (await _download(tenant, member, file["id"])).json()
    fetched = await transfer(tenant, link)
    tampered = await tenant.client.get(link["url"][:-3] + ("aaa" if not link["url"].endswith("aaa") else "bbb"))

    assert file["status"] == "available"
    assert link["url"].startswith(f"{tenant.settings.public_url}/v1/files/blob/")
    assert (fetched.status_code, fetched.content) == (200, data)
    assert tampered.status_code in (403, 404)
