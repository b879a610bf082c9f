"""`init_storage` / `soa storage init` / `soa migrate`: the object store prepared once, and a second run
changes nothing. The app credential is created through MinIO's admin API on the JuiceFS gateway
(MinIO gateway code); moto has no admin API, so there the step is skipped with a message."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from minio import Minio
from minio.error import S3Error

from soa_platform.files.bootstrap import app_policy_name, init_storage
from soa_platform.files.s3 import S3Storage
from soa_platform.files.storage import StorageError
from soa_platform.settings import PlatformSettings
from tests.platform.files.blob_api import SESSION_KEY, SIGNING_KEY, base_settings
from tests.support.fixtures_s3 import fresh_bucket
from tests.support.s3_servers import S3Endpoint

SOA = str(Path(sys.executable).with_name("soa"))
MINUTE = timedelta(minutes=1)


def tenant_store(server: S3Endpoint, **overrides: Any) -> PlatformSettings:
    """Settings of a tenant whose app key differs from the server's root credential."""
    values: dict[str, Any] = {
        "s3_endpoint": server.endpoint,
        "s3_bucket": fresh_bucket(),
        "s3_region": server.region,
        "s3_access_key": f"app-{uuid.uuid4().hex[:8]}",
        "s3_secret_key": "app-secret-" + uuid.uuid4().hex,
        "s3_root_user": server.access_key,
        "s3_root_password": server.secret_key,
        **overrides,
    }
    return base_settings(**values)


def client_of(settings: PlatformSettings) -> Minio:
    return S3Storage(settings).client


async def test_first_run_creates_bucket_app_user_and_policy_and_second_run_changes_nothing(
    juicefs_s3: S3Endpoint,
) -> None:
    settings = tenant_store(juicefs_s3)
    lines: list[str] = []

    first = await init_storage(settings, progress=lines.append)
    second = await init_storage(settings, progress=lines.append)

    assert (first.bucket_created, first.app_user, first.policy) == (True, "created", "created, attached")
    assert first.changed
    assert (second.bucket_created, second.versioning_changed, second.app_user, second.policy) == (
        False,
        False,
        "unchanged",
        "unchanged",
    )
    assert not second.changed
    assert any(app_policy_name(settings.s3_bucket) in line for line in lines)
    assert not any(settings.s3_secret_key.get_secret_value() in line for line in lines)


async def test_the_app_key_works_on_its_bucket_only(juicefs_s3: S3Endpoint) -> None:
    settings = tenant_store(juicefs_s3)
    other = tenant_store(juicefs_s3)
    await init_storage(settings)
    await init_storage(other)

    app = S3Storage(settings)
    put = app.presign_put("files/1/a", content_type="text/plain", expires=MINUTE)
    async with httpx.AsyncClient() as http:
        assert (await http.put(put.url, content=b"hello", headers=put.headers)).status_code == 200
        get = app.presign_get("files/1/a", expires=MINUTE, filename="a.txt", content_type="text/plain")
        assert (await http.get(get.url)).content == b"hello"
    assert (await app.usage()).objects == 1

    with pytest.raises(S3Error) as denied:
        list(client_of(settings).list_objects(other.s3_bucket))
    assert denied.value.code == "AccessDenied"
    with pytest.raises(S3Error, match="AccessDenied"):
        client_of(settings).make_bucket(fresh_bucket())
    with pytest.raises(S3Error, match="AccessDenied"):
        client_of(settings).remove_bucket(settings.s3_bucket)


async def test_a_changed_app_secret_is_set_again(juicefs_s3: S3Endpoint) -> None:
    settings = tenant_store(juicefs_s3)
    await init_storage(settings)
    rotated = base_settings(**{**settings.model_dump(), "s3_secret_key": "rotated-" + uuid.uuid4().hex})

    report = await init_storage(rotated)

    assert report.app_user == "secret reset"
    await S3Storage(rotated).check()
    with pytest.raises(StorageError):
        await S3Storage(settings).check()


async def test_without_an_admin_api_the_app_user_is_skipped_with_a_message(moto_s3: S3Endpoint) -> None:
    settings = tenant_store(moto_s3, storage_versioning=True)
    lines: list[str] = []

    first = await init_storage(settings, progress=lines.append)
    second = await init_storage(settings, progress=lines.append)

    assert (first.bucket_created, first.versioning, first.app_user) == (True, "Enabled", "skipped: no admin API")
    assert (second.bucket_created, second.versioning_changed, second.changed) == (False, False, False)
    assert any("no MinIO admin API" in line for line in lines)


async def test_turning_versioning_off_suspends_it(moto_s3: S3Endpoint) -> None:
    settings = tenant_store(moto_s3, storage_versioning=True)
    await init_storage(settings)
    report = await init_storage(base_settings(**{**settings.model_dump(), "storage_versioning": False}))
    assert (report.versioning, report.versioning_changed) == ("Suspended", True)


async def test_root_credentials_are_required(moto_s3: S3Endpoint) -> None:
    settings = tenant_store(moto_s3, s3_root_user="", s3_root_password="")
    with pytest.raises(StorageError, match="SOA_S3_ROOT_USER and SOA_S3_ROOT_PASSWORD"):
        await init_storage(settings)


async def test_a_wrong_root_password_is_refused_without_echoing_it(juicefs_s3: S3Endpoint) -> None:
    settings = tenant_store(juicefs_s3, s3_root_password="not-the-root-password")
    with pytest.raises(StorageError) as refused:
        await init_storage(settings)
    assert "not-the-root-password" not in str(refused.value)


async def test_the_local_driver_only_needs_its_directory(tmp_path: Path) -> None:
    settings = base_settings(storage_driver="local", storage_local_dir=str(tmp_path / "files"))
    report = await init_storage(settings)
    assert report.driver == "local"
    assert (tmp_path / "files" / "objects").is_dir()


# the commands


def soa_env(settings: PlatformSettings, database: Path) -> dict[str, str]:
    return {
        **os.environ,
        "SOA_ENVIRONMENT": "test",
        "SOA_SIGNING_KEY": SIGNING_KEY,
        "SOA_SESSION_KEY": SESSION_KEY,
        "SOA_DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "SOA_STORAGE_DRIVER": "s3",
        "SOA_S3_ENDPOINT": settings.s3_endpoint,
        "SOA_S3_BUCKET": settings.s3_bucket,
        "SOA_S3_ACCESS_KEY": settings.s3_access_key.get_secret_value(),
        "SOA_S3_SECRET_KEY": settings.s3_secret_key.get_secret_value(),
        "SOA_S3_ROOT_USER": settings.s3_root_user.get_secret_value(),
        "SOA_S3_ROOT_PASSWORD": settings.s3_root_password.get_secret_value(),
    }


def soa(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SOA, *args], env=env, capture_output=True, text=True, timeout=60, check=False)


def test_soa_storage_init_prints_progress_and_is_idempotent(juicefs_s3: S3Endpoint, tmp_path: Path) -> None:
    settings = tenant_store(juicefs_s3)
    env = soa_env(settings, tmp_path / "soa.db")

    first = soa("storage", "init", env=env)
    second = soa("storage", "init", env=env)

    assert first.returncode == 0, first.stderr
    assert "bucket created" in first.stderr
    assert "object store ready (changed)" in first.stderr
    assert second.returncode == 0, second.stderr
    assert "object store ready (nothing to change)" in second.stderr
    assert settings.s3_secret_key.get_secret_value() not in first.stderr + first.stdout


def test_soa_storage_init_fails_clearly(juicefs_s3: S3Endpoint, tmp_path: Path) -> None:
    settings = tenant_store(juicefs_s3, s3_root_password="a-wrong-root-password")
    done = soa("storage", "init", env=soa_env(settings, tmp_path / "soa.db"))
    assert done.returncode == 4
    assert "object store not ready" in done.stderr
    assert "a-wrong-root-password" not in done.stderr + done.stdout


def test_soa_migrate_also_prepares_the_object_store(juicefs_s3: S3Endpoint, tmp_path: Path) -> None:
    settings = tenant_store(juicefs_s3)
    done = soa("migrate", env=soa_env(settings, tmp_path / "soa.db"))
    assert done.returncode == 0, done.stderr
    assert "database schema is current" in done.stderr
    assert "object store ready (changed)" in done.stderr
    assert client_of(settings).bucket_exists(settings.s3_bucket)
