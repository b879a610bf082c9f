"""Tenants with file storage on real S3 protocol servers (moto, the JuiceFS gateway) or the local driver, and
helpers that move bytes the way a client does: announce, PUT to the presigned URL, complete, download."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from soa_platform.files.models import FileStatus
from soa_platform.files.s3 import S3Storage
from soa_platform.files.verification import verify_file
from soa_platform.identity import repository as users
from soa_platform.identity.models import User as UserRow
from soa_platform.settings import PlatformSettings
from tests.platform.harness import Tenant, User, running_tenant, tenant_settings
from tests.support.fixtures_s3 import fresh_bucket
from tests.support.s3_servers import S3Endpoint
from tests.support.servers import PostgresServer

TenantFactory = Callable[..., AbstractAsyncContextManager[Tenant]]


def s3_values(endpoint: S3Endpoint, bucket: str | None = None) -> dict[str, Any]:
    """Settings of the s3 driver on `endpoint`, in a bucket of its own."""
    return {
        "storage_driver": "s3",
        "s3_endpoint": endpoint.endpoint,
        "s3_bucket": bucket or fresh_bucket(),
        "s3_access_key": endpoint.access_key,
        "s3_secret_key": endpoint.secret_key,
        "s3_region": endpoint.region,
    }


async def create_bucket(settings: PlatformSettings) -> None:
    await S3Storage(settings).ensure_ready(versioning=settings.storage_versioning)


@pytest.fixture
def s3_tenant(postgres_server: PostgresServer, redis_url: str) -> TenantFactory:
    """Starts a tenant on a fresh PostgreSQL database and Redis with its own bucket on `endpoint`."""

    @asynccontextmanager
    async def start(endpoint: S3Endpoint, name: str = "alpha", **overrides: Any) -> AsyncIterator[Tenant]:
        database = postgres_server.create_database()
        settings = tenant_settings(name, database, redis_url, **{**s3_values(endpoint), **overrides})
        await create_bucket(settings)
        try:
            async with running_tenant(settings) as tenant:
                yield tenant
        finally:
            postgres_server.drop_database(database.rsplit("/", 1)[-1])

    return start


@pytest.fixture
async def moto_tenant(s3_tenant: TenantFactory, moto_s3: S3Endpoint) -> AsyncIterator[Tenant]:
    async with s3_tenant(moto_s3) as tenant:
        yield tenant


@pytest.fixture
async def juicefs_tenant(s3_tenant: TenantFactory, juicefs_s3: S3Endpoint) -> AsyncIterator[Tenant]:
    async with s3_tenant(juicefs_s3) as tenant:
        yield tenant


@pytest.fixture
async def storageless_tenant(postgres_url: str, redis_url: str) -> AsyncIterator[Tenant]:
    """A tenant whose file storage is not configured (no S3 endpoint or bucket)."""
    async with running_tenant(tenant_settings("alpha", postgres_url, redis_url)) as tenant:
        assert tenant.platform.storage is None
        yield tenant


@pytest.fixture
async def local_tenant(tmp_path: Path) -> AsyncIterator[Tenant]:
    """The embedded default: SQLite, in-process events, the local driver behind the api's blob URLs."""
    settings = tenant_settings(
        "alpha", f"sqlite+aiosqlite:///{tmp_path / 'soa.db'}", None, environment="embedded",
        storage_driver="local", storage_local_dir=str(tmp_path / "files"),
    )  # fmt: skip
    async with running_tenant(settings) as tenant:
        assert tenant.platform.storage is not None
        await tenant.platform.storage.ensure_ready(versioning=False)
        yield tenant


# --- moving bytes like a client ----------------------------------------------------------------------------------


async def announce(
    tenant: Tenant, user: User, filename: str, content_type: str, size: int, key: str | None = None
) -> httpx.Response:
    headers = {**user.headers, **({"Idempotency-Key": key} if key else {})}
    body = {"filename": filename, "content_type": content_type, "size": size}
    return await tenant.client.post("/v1/files", json=body, headers=headers)


async def transfer(tenant: Tenant, request: dict[str, Any], content: bytes | None = None) -> httpx.Response:
    """Send a presigned request as a browser would: to the store, or to the api's blob URLs (local driver)."""
    url, headers = request["url"], request.get("headers") or {}
    if url.startswith(tenant.settings.public_url):
        return await tenant.client.request(request["method"], url, content=content, headers=headers)
    async with httpx.AsyncClient(timeout=30) as client:
        return await client.request(request["method"], url, content=content, headers=headers)


async def upload(
    tenant: Tenant, user: User, data: bytes, content_type: str = "text/plain", filename: str = "notes.txt"
) -> dict[str, Any]:
    """Announce, PUT (every part, for a multipart upload) and complete; returns the completed file."""
    response = await announce(tenant, user, filename, content_type, len(data))
    assert response.status_code == 201, response.text
    created = response.json()
    plan = created["upload"]
    body: dict[str, Any] | None = None
    if plan["kind"] == "single":
        assert (await transfer(tenant, plan["request"], data)).status_code == 200
    else:
        step, parts = plan["part_size"], []
        for part in plan["parts"]:
            start = (part["number"] - 1) * step
            sent = await transfer(tenant, part, data[start : start + step])
            assert sent.status_code == 200, sent.text
            parts.append({"number": part["number"], "etag": sent.headers["ETag"]})
        body = {"parts": parts}
    done = await tenant.client.post(f"/v1/files/{created['id']}/complete", json=body, headers=user.headers)
    assert done.status_code == 200, done.text
    return dict(done.json())


async def verify(tenant: Tenant, file_id: int) -> FileStatus | None:
    """What the worker's `soa.files.verify` task does, run here."""
    storage = tenant.platform.storage
    assert storage is not None
    return await verify_file(tenant.platform.db, storage, tenant.settings, file_id)


async def uploaded_and_verified(tenant: Tenant, user: User, data: bytes, content_type: str = "text/plain",
                                filename: str = "notes.txt") -> dict[str, Any]:  # fmt: skip
    file = await upload(tenant, user, data, content_type, filename)
    await verify(tenant, file["id"])
    response = await tenant.client.get(f"/v1/files/{file['id']}", headers=user.headers)
    return dict(response.json())


async def user_row(tenant: Tenant, user: User) -> UserRow:
    async with tenant.platform.db.unit_of_work() as uow:
        row = await users.get(uow.session, user.id)
    assert row is not None
    return row


async def channel_with(tenant: Tenant, owner: User, *members: User, name: str = "general") -> int:
    body = {"kind": "private", "name": name, "member_ids": [m.id for m in members]}
    response = await tenant.client.post("/v1/conversations", json=body, headers=owner.headers)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def post_with_files(tenant: Tenant, author: User, conversation_id: int, file_ids: list[int],
                          key: str = "m1") -> int:  # fmt: skip
    """Post a message with these files attached, through the messaging API."""
    response = await tenant.client.post(
        f"/v1/conversations/{conversation_id}/messages",
        json={"body": "see attached", "idempotency_key": key, "file_ids": file_ids}, headers=author.headers,
    )  # fmt: skip
    assert response.status_code == 201, response.text
    assert [a["file_id"] for a in response.json()["attachments"]] == file_ids
    return int(response.json()["id"])
