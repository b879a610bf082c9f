"""The storage contract, run against every driver on a real server: moto and the JuiceFS gateway
(S3 driver) and the local driver behind a running blob api. Bytes always travel over HTTP with
httpx, exactly as a browser would move them with the presigned requests."""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from minio import Minio
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from soa_platform.files.disposition import attachment_disposition
from soa_platform.files.s3 import S3Storage
from soa_platform.files.storage import CompletedPart, PresignedRequest, Storage, StorageError
from tests.platform.files.blob_api import base_settings, serve_local_storage
from tests.support.fixtures_s3 import fresh_bucket
from tests.support.s3_servers import S3Endpoint

MIB = 1024 * 1024
MINUTE = timedelta(minutes=1)
FILENAME = "Bericht über Ärger (final).pdf"


@dataclass
class Case:
    """One driver on one server, with a key prefix of its own."""

    name: str
    storage: Storage
    prefix: str
    enforces_signatures: bool  # refuses tampered and expired URLs
    versioning: bool

    def key(self, name: str = "object") -> str:
        return f"{self.prefix}{name}"


def s3_storage(
    server: S3Endpoint, bucket: str | None = None, *, tracer_provider: TracerProvider | None = None, **overrides: object
) -> S3Storage:
    values: dict[str, object] = {
        "s3_endpoint": server.endpoint,
        "s3_bucket": bucket or fresh_bucket(),
        "s3_region": server.region,
        "s3_access_key": server.access_key,
        "s3_secret_key": server.secret_key,
    }
    return S3Storage(base_settings(**{**values, **overrides}), tracer_provider=tracer_provider)


@pytest.fixture(scope="module")
def local_storage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Storage]:
    with serve_local_storage(tmp_path_factory.mktemp("local-storage"), storage_max_upload_mib=16) as storage:
        yield storage


@pytest.fixture(params=["moto", "juicefs", "local"])
async def case(request: pytest.FixtureRequest) -> AsyncIterator[Case]:
    prefix = f"files/{uuid.uuid4().hex}/"
    if request.param == "local":
        local: Storage = request.getfixturevalue("local_storage")
        yield Case("local", local, prefix, enforces_signatures=True, versioning=False)
        return
    server: S3Endpoint = request.getfixturevalue(f"{request.param}_s3")
    storage = s3_storage(server)
    await storage.ensure_ready(versioning=False)
    yield Case(request.param, storage, prefix, server.checks_signatures, server.versioning)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


async def send(http: httpx.AsyncClient, request: PresignedRequest, body: bytes = b"") -> httpx.Response:
    """Do what a browser does with a presigned request: its method, URL and headers, as given."""
    return await http.request(request.method, request.url, headers=request.headers, content=body or None)


async def upload(case: Case, http: httpx.AsyncClient, key: str, body: bytes, content_type: str = "text/plain") -> None:
    response = await send(http, case.storage.presign_put(key, content_type=content_type, expires=MINUTE), body)
    assert response.status_code == 200, response.text


def tamper_signature(url: str) -> str:
    """Change one character of the signature (the S3 query signature, or the JWT's last part)."""
    flip = "0" if url[-1] != "0" else "1"
    if "X-Amz-Signature=" in url:
        return url[:-1] + flip
    # a JWT's last base64url character may carry unused bits: change one in the middle of the signature
    head, signature = url.rsplit(".", 1)
    middle = len(signature) // 2
    swapped = "A" if signature[middle] != "A" else "B"
    return f"{head}.{signature[:middle]}{swapped}{signature[middle + 1 :]}"


def tamper_key(request: PresignedRequest, key: str, other: str) -> str:
    """Point the signed request at another object (in the S3 path, or inside the JWT's claims)."""
    if "X-Amz-Signature=" in request.url:
        return request.url.replace(key, other, 1)
    import base64
    import json

    base, token = request.url.rsplit("/", 1)
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["k"] = other
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{base}/{header}.{forged}.{signature}"


# transfers


async def test_presigned_put_then_get_returns_the_same_bytes(case: Case, http: httpx.AsyncClient) -> None:
    body = os.urandom(200_000)
    await upload(case, http, case.key(), body, "application/octet-stream")
    get = case.storage.presign_get(case.key(), expires=MINUTE, filename="x.bin", content_type="application/pdf")
    response = await send(http, get)
    assert response.status_code == 200
    assert response.content == body


async def test_presigned_put_names_the_content_type_the_client_must_send(case: Case, http: httpx.AsyncClient) -> None:
    put = case.storage.presign_put(case.key(), content_type="text/csv; charset=utf-8", expires=MINUTE)
    assert put.method == "PUT"
    assert put.headers == {"Content-Type": "text/csv; charset=utf-8"}
    assert (await send(http, put, b"a,b\n")).status_code == 200
    info = await case.storage.stat(case.key())
    assert info is not None
    assert info.content_type == "text/csv; charset=utf-8"


async def test_a_put_with_another_content_type_is_refused(case: Case, http: httpx.AsyncClient) -> None:
    if case.name != "local":
        pytest.skip("the minio SDK signs only the host header of a presigned URL: S3 cannot bind Content-Type")
    put = case.storage.presign_put(case.key(), content_type="image/png", expires=MINUTE)
    response = await http.put(put.url, content=b"<html>", headers={"Content-Type": "text/html"})
    assert response.status_code == 403
    assert "image/png" in response.json()["detail"]
    assert await case.storage.stat(case.key()) is None


async def test_presigned_get_makes_the_browser_save_the_file_under_its_name(
    case: Case, http: httpx.AsyncClient
) -> None:
    await upload(case, http, case.key(), b"%PDF-1.4 ...", "application/octet-stream")
    get = case.storage.presign_get(case.key(), expires=MINUTE, filename=FILENAME, content_type="application/pdf")
    response = await send(http, get)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"] == attachment_disposition(FILENAME)
    assert (
        "filename*=UTF-8''Bericht%20%C3%BCber%20%C3%84rger%20%28final%29.pdf" in response.headers["content-disposition"]
    )


async def test_multipart_upload_of_three_5_mib_parts_through_presigned_parts(
    case: Case, http: httpx.AsyncClient
) -> None:
    parts = [os.urandom(5 * MIB) for _ in range(3)]
    upload_id = await case.storage.start_multipart(case.key(), content_type="video/mp4")
    completed = []
    for number, data in enumerate(parts, start=1):
        response = await send(http, case.storage.presign_part(case.key(), upload_id, number, expires=MINUTE), data)
        assert response.status_code == 200, response.text
        completed.append(CompletedPart(number, response.headers["etag"]))
    await case.storage.complete_multipart(case.key(), upload_id, list(reversed(completed)))

    info = await case.storage.stat(case.key())
    assert info is not None
    assert info.size == 15 * MIB
    read = hashlib.sha256()
    async for chunk in case.storage.read(case.key()):
        read.update(chunk)
    assert read.hexdigest() == hashlib.sha256(b"".join(parts)).hexdigest()


async def test_completing_with_a_wrong_part_etag_fails(case: Case, http: httpx.AsyncClient) -> None:
    upload_id = await case.storage.start_multipart(case.key(), content_type="text/plain")
    response = await send(http, case.storage.presign_part(case.key(), upload_id, 1, expires=MINUTE), b"tail")
    assert response.status_code == 200
    with pytest.raises(StorageError, match="InvalidPart"):
        await case.storage.complete_multipart(case.key(), upload_id, [CompletedPart(1, "0" * 32)])
    await case.storage.abort_multipart(case.key(), upload_id)
    assert await case.storage.stat(case.key()) is None


async def test_abort_multipart_is_idempotent(case: Case, http: httpx.AsyncClient) -> None:
    upload_id = await case.storage.start_multipart(case.key(), content_type="text/plain")
    await case.storage.abort_multipart(case.key(), upload_id)
    await case.storage.abort_multipart(case.key(), upload_id)
    response = await send(http, case.storage.presign_part(case.key(), upload_id, 1, expires=MINUTE), b"late")
    assert response.status_code == (500 if case.name == "moto" else 404)  # moto answers NoSuchUpload with a 500
    assert await case.storage.stat(case.key()) is None


# objects


async def test_stat_of_a_missing_key_is_none(case: Case) -> None:
    assert await case.storage.stat(case.key("missing")) is None


async def test_usage_counts_objects_under_a_prefix_and_delete_removes_them(case: Case, http: httpx.AsyncClient) -> None:
    await upload(case, http, case.key("a"), b"x" * 1000)
    await upload(case, http, case.key("b/c"), b"y" * 234)
    await upload(case, http, f"other-{case.prefix}d", b"z" * 99)
    assert await case.storage.usage(case.prefix) == type(await case.storage.usage(case.prefix))(1234, 2)

    await case.storage.delete(case.key("b/c"))
    await case.storage.delete(case.key("b/c"))  # idempotent
    usage = await case.storage.usage(case.prefix)
    assert (usage.bytes, usage.objects) == (1000, 1)
    assert await case.storage.stat(case.key("b/c")) is None
    assert await case.storage.stat(case.key("a")) is not None


async def test_ensure_ready_is_idempotent_and_check_passes(case: Case) -> None:
    await case.storage.ensure_ready(versioning=False)
    await case.storage.ensure_ready(versioning=False)
    await case.storage.check()


# what a presigned URL allows


async def test_an_expired_url_is_refused(case: Case, http: httpx.AsyncClient) -> None:
    if not case.enforces_signatures:
        pytest.skip(f"{case.name} accepts expired presigned URLs")
    await upload(case, http, case.key(), b"old")
    put = case.storage.presign_put(case.key("new"), content_type="text/plain", expires=timedelta(seconds=1))
    get = case.storage.presign_get(
        case.key(), expires=timedelta(seconds=1), filename="a.txt", content_type="text/plain"
    )
    await asyncio.sleep(2.1)
    assert (await send(http, put, b"late")).status_code == 403
    assert (await send(http, get)).status_code == 403
    assert await case.storage.stat(case.key("new")) is None


async def test_a_tampered_signature_is_refused(case: Case, http: httpx.AsyncClient) -> None:
    if not case.enforces_signatures:
        pytest.skip(f"{case.name} accepts tampered presigned URLs")
    await upload(case, http, case.key(), b"secret report")
    put = case.storage.presign_put(case.key("new"), content_type="text/plain", expires=MINUTE)
    get = case.storage.presign_get(case.key(), expires=MINUTE, filename="a.txt", content_type="text/plain")
    bad_put = PresignedRequest("PUT", tamper_signature(put.url), put.expires_at, put.headers)
    assert (await send(http, bad_put, b"forged")).status_code == 403
    assert (await send(http, PresignedRequest("GET", tamper_signature(get.url), get.expires_at))).status_code == 403
    assert await case.storage.stat(case.key("new")) is None


async def test_a_url_pointed_at_another_key_is_refused(case: Case, http: httpx.AsyncClient) -> None:
    if not case.enforces_signatures:
        pytest.skip(f"{case.name} accepts tampered presigned URLs")
    await upload(case, http, case.key("mine"), b"mine")
    await upload(case, http, case.key("theirs"), b"their confidential minutes")
    get = case.storage.presign_get(case.key("mine"), expires=MINUTE, filename="a.txt", content_type="text/plain")
    forged = tamper_key(get, case.key("mine"), case.key("theirs"))
    response = await http.get(forged)
    assert response.status_code == 403
    assert b"confidential" not in response.content


# versioning (moto: JuiceFS and the local driver keep one version)


async def test_delete_removes_every_version_of_a_versioned_object(moto_s3: S3Endpoint, http: httpx.AsyncClient) -> None:
    storage = s3_storage(moto_s3)
    await storage.ensure_ready(versioning=True)
    key = "files/1/report"
    for body in (b"first", b"second!"):
        put = storage.presign_put(key, content_type="text/plain", expires=MINUTE)
        assert (await send(http, put, body)).status_code == 200
    assert (await storage.usage("files/")).bytes == len(b"first") + len(b"second!")
    versions = list(storage.client.list_objects(storage.bucket, prefix=key, include_version=True))
    assert len(versions) == 2

    await storage.delete(key)

    assert list(storage.client.list_objects(storage.bucket, prefix=key, include_version=True)) == []
    assert await storage.usage("files/") == type(await storage.usage())(0, 0)


async def test_presigned_get_of_an_old_version(moto_s3: S3Endpoint, http: httpx.AsyncClient) -> None:
    storage = s3_storage(moto_s3)
    await storage.ensure_ready(versioning=True)
    await send(http, storage.presign_put("k", content_type="text/plain", expires=MINUTE), b"v1")
    first = await storage.stat("k")
    await send(http, storage.presign_put("k", content_type="text/plain", expires=MINUTE), b"v2")
    assert first is not None
    assert first.version_id
    get = storage.presign_get(
        "k", expires=MINUTE, filename="k.txt", content_type="text/plain", version_id=first.version_id
    )
    assert (await send(http, get)).content == b"v1"


async def test_ensure_ready_changes_versioning_only_when_it_differs(moto_s3: S3Endpoint) -> None:
    storage = s3_storage(moto_s3)
    assert await storage.prepare(versioning=True) == (True, "Off", "Enabled")
    assert await storage.prepare(versioning=True) == (False, "Enabled", "Enabled")
    assert await storage.prepare(versioning=False) == (False, "Enabled", "Suspended")
    assert await storage.prepare(versioning=False) == (False, "Suspended", "Suspended")


async def test_versioning_on_a_server_without_it_is_a_clear_error(juicefs_s3: S3Endpoint) -> None:
    storage = s3_storage(juicefs_s3)
    with pytest.raises(StorageError, match="does not support versioning"):
        await storage.ensure_ready(versioning=True)
    await storage.ensure_ready(versioning=False)  # and without versioning it is fine


# errors


async def test_errors_name_the_failure_but_never_a_secret(juicefs_s3: S3Endpoint) -> None:
    good = s3_storage(juicefs_s3)
    await good.ensure_ready(versioning=False)
    wrong = s3_storage(juicefs_s3, good.bucket, s3_secret_key="a-wrong-secret-that-must-not-leak")
    for attempt in (wrong.stat("k"), wrong.check(), wrong.usage(), wrong.delete("k")):
        with pytest.raises(StorageError) as refused:
            await attempt
        message = str(refused.value)
        assert "SignatureDoesNotMatch" in message or "AccessDenied" in message or "Forbidden" in message, message
        assert "a-wrong-secret" not in message
        assert juicefs_s3.secret_key not in message
        assert refused.value.__cause__ is None


async def test_an_unreachable_store_is_a_storage_error(tmp_path: Path) -> None:
    from tests.support.processes import free_port

    storage = s3_storage(
        S3Endpoint("none", f"http://127.0.0.1:{free_port()}", "ak", "unreachable-secret"), "soa-unreachable"
    )
    with pytest.raises(StorageError, match="cannot be reached") as refused:
        await storage.check()
    assert "unreachable-secret" not in str(refused.value)


async def test_presigned_urls_use_the_public_endpoint(moto_s3: S3Endpoint) -> None:
    storage = s3_storage(moto_s3, s3_public_endpoint="https://files.moitt.soa.gov.pk")
    put = storage.presign_put("files/1/x", content_type="text/plain", expires=MINUTE)
    assert put.url.startswith(f"https://files.moitt.soa.gov.pk/{storage.bucket}/files/1/x?")
    assert "X-Amz-Expires=60" in put.url


async def test_s3_calls_are_client_spans_of_the_current_trace(moto_s3: S3Endpoint) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    storage = s3_storage(moto_s3, tracer_provider=provider)
    with provider.get_tracer("test").start_as_current_span("POST /v1/files") as request_span:
        await storage.ensure_ready(versioning=False)
        await storage.stat("files/1/x")
    spans = {span.name: span for span in exporter.get_finished_spans()}
    assert {"s3 check bucket", "s3 create bucket", "s3 read versioning", "s3 stat"} <= spans.keys()
    stat = spans["s3 stat"]
    assert stat.kind is SpanKind.CLIENT
    assert stat.parent is not None
    assert stat.parent.span_id == request_span.get_span_context().span_id
    assert stat.attributes == {"s3.bucket": storage.bucket, "s3.key": "files/1/x"}


@pytest.mark.parametrize("versioning", [True, False])
async def test_ensure_ready_with_nothing_to_do_only_reads(moto_s3: S3Endpoint, versioning: bool) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    storage = s3_storage(moto_s3, tracer_provider=provider)
    await storage.ensure_ready(versioning=versioning)
    exporter.clear()

    await storage.ensure_ready(versioning=versioning)

    assert [span.name for span in exporter.get_finished_spans()] == ["s3 check bucket", "s3 read versioning"]


def test_presigning_makes_no_network_call() -> None:
    """Signed for an endpoint nothing listens on: presigning must still work (region is configured)."""
    storage = s3_storage(S3Endpoint("none", "http://127.0.0.1:9", "ak", "sk"), "soa-offline")
    assert "X-Amz-Signature=" in storage.presign_get("k", expires=MINUTE, filename="k", content_type="text/plain").url
    assert isinstance(storage.client, Minio)
