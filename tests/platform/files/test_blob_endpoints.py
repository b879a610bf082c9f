"""The local driver's own rules, through its blob routes on a running server: what a signed api URL
allows, size limits, atomic writes, keys that cannot leave the storage root."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from soa_platform.files.local import LocalStorage
from soa_platform.files.s3 import S3Storage
from soa_platform.files.storage import StorageError
from tests.platform.files.blob_api import base_settings, blob_app, serve_local_storage

MINUTE = timedelta(minutes=1)
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStorage]:
    with serve_local_storage(tmp_path_factory.mktemp("blob-api"), storage_max_upload_mib=1) as local:
        yield local


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


def leftovers(storage: LocalStorage) -> list[str]:
    return os.listdir(storage.tmp)


async def test_a_body_over_the_limit_is_refused_by_its_declared_length(
    storage: LocalStorage, http: httpx.AsyncClient
) -> None:
    put = storage.presign_put("files/big", content_type="application/zip", expires=MINUTE)
    response = await http.put(put.url, headers=put.headers, content=b"z" * (MIB + 1))
    assert response.status_code == 413
    assert "1048576 bytes" in response.json()["detail"]
    assert await storage.stat("files/big") is None


async def test_a_streamed_body_over_the_limit_is_cut_off_and_leaves_nothing(
    storage: LocalStorage, http: httpx.AsyncClient
) -> None:
    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: only counting the bytes can stop it
        for _ in range(20):
            yield b"z" * 65536

    put = storage.presign_put("files/streamed", content_type="application/zip", expires=MINUTE)
    response = await http.put(put.url, headers=put.headers, content=chunks())
    assert response.status_code == 413
    assert await storage.stat("files/streamed") is None
    assert leftovers(storage) == []


async def test_a_refused_upload_leaves_the_existing_object_intact(
    storage: LocalStorage, http: httpx.AsyncClient
) -> None:
    put = storage.presign_put("files/kept", content_type="text/plain", expires=MINUTE)
    assert (await http.put(put.url, headers=put.headers, content=b"original")).status_code == 200
    assert (await http.put(put.url, headers=put.headers, content=b"x" * (MIB + 1))).status_code == 413
    get = storage.presign_get("files/kept", expires=MINUTE, filename="kept.txt", content_type="text/plain")
    assert (await http.get(get.url)).content == b"original"


async def test_a_get_link_cannot_upload(storage: LocalStorage, http: httpx.AsyncClient) -> None:
    get = storage.presign_get("files/x", expires=MINUTE, filename="x", content_type="text/plain")
    response = await http.put(get.url, content=b"x", headers={"Content-Type": "text/plain"})
    assert response.status_code == 403
    assert response.json()["detail"] == "this link allows GET only, not PUT"


async def test_a_link_of_another_tenant_is_refused(
    storage: LocalStorage, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    other = LocalStorage(base_settings(tenant="other", storage_local_dir=str(tmp_path), public_url=storage.base_url))
    put = other.presign_put("files/x", content_type="text/plain", expires=MINUTE)
    url = put.url.replace(f"{other.base_url}", storage.base_url)
    response = await http.put(url, content=b"x", headers=put.headers)
    assert response.status_code == 403
    assert response.json()["detail"] == "this link belongs to another tenant"


async def test_a_link_signed_with_another_key_is_refused(
    storage: LocalStorage, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    forger = LocalStorage(base_settings(session_key="f" * 48, storage_local_dir=str(tmp_path)))
    put = forger.presign_put("files/x", content_type="text/plain", expires=MINUTE)
    url = f"{storage.base_url}/{put.url.rsplit('/', 1)[1]}"
    response = await http.put(url, content=b"x", headers=put.headers)
    assert response.status_code == 403
    assert "signature" in response.json()["detail"]


async def test_downloads_are_never_rendered_by_the_browser(storage: LocalStorage, http: httpx.AsyncClient) -> None:
    put = storage.presign_put("files/page", content_type="text/html", expires=MINUTE)
    assert (await http.put(put.url, headers=put.headers, content=b"<script>alert(1)</script>")).status_code == 200
    get = storage.presign_get("files/page", expires=MINUTE, filename="page.html", content_type="text/html")
    response = await http.get(get.url)
    assert response.headers["content-disposition"].startswith("attachment;")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-security-policy"] == "sandbox"


async def test_a_deleted_object_is_not_found(storage: LocalStorage, http: httpx.AsyncClient) -> None:
    put = storage.presign_put("trash/gone", content_type="text/plain", expires=MINUTE)
    assert (await http.put(put.url, headers=put.headers, content=b"bye")).status_code == 200
    get = storage.presign_get("trash/gone", expires=MINUTE, filename="gone.txt", content_type="text/plain")
    await storage.delete("trash/gone")
    assert (await http.get(get.url)).status_code == 404
    assert not (storage.objects / "trash").exists()  # emptied folders are pruned


async def test_a_part_link_cannot_write_into_another_keys_upload(
    storage: LocalStorage, http: httpx.AsyncClient
) -> None:
    upload_id = await storage.start_multipart("files/a", content_type="text/plain")
    part = storage.presign_part("files/b", upload_id, 1, expires=MINUTE)
    assert (await http.put(part.url, content=b"x")).status_code == 404
    await storage.abort_multipart("files/a", upload_id)


@pytest.mark.parametrize(
    "key", ["", "../escape", "files/../../escape", "/etc/passwd", "a//b", "a/./b", "a\\b", "a\x00"]
)
def test_keys_cannot_leave_the_storage_root(storage: LocalStorage, key: str) -> None:
    with pytest.raises(StorageError, match="invalid object key"):
        storage.object_path(key)
    with pytest.raises(StorageError):
        storage.presign_put(key, content_type="text/plain", expires=MINUTE)


def test_a_symlink_out_of_the_root_is_refused(storage: LocalStorage, tmp_path: Path) -> None:
    (storage.objects / "link").symlink_to(tmp_path, target_is_directory=True)
    try:
        with pytest.raises(StorageError, match="invalid object key"):
            storage.object_path("link/secret")
    finally:
        (storage.objects / "link").unlink()


async def test_versioning_is_warned_about_not_refused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    local = LocalStorage(base_settings(storage_local_dir=str(tmp_path)))
    with caplog.at_level(logging.WARNING, logger="soa_platform.files.local"):
        await local.ensure_ready(versioning=True)
    assert "keeps only the latest version" in caplog.text
    await local.check()


async def test_the_routes_are_not_found_when_the_store_is_s3() -> None:
    settings = base_settings(s3_endpoint="http://127.0.0.1:9", s3_bucket="soa-x", s3_access_key="a", s3_secret_key="b")
    local = LocalStorage(base_settings(storage_local_dir="/nonexistent"))
    put = local.presign_put("files/x", content_type="text/plain", expires=MINUTE)
    app = blob_app(settings, S3Storage(settings))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
        path = put.url.split("://", 1)[1].split("/", 1)[1]
        response = await client.put(f"/{path}", content=b"x", headers=put.headers)
    assert response.status_code == 404
