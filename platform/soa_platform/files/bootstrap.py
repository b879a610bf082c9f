"""`soa storage init` (also run by `soa migrate`): prepare one tenant's object store, idempotently.

With the store's root credential: the bucket exists, its versioning is as `storage_versioning` says,
and — when the server offers MinIO's admin API — the app's own access key exists with a policy
limited to this one bucket. Each step reads first and writes only what differs, so a second run
changes nothing. The root credential is used here only; the api and worker get the app's key.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from minio import Minio, MinioAdmin
from minio.credentials.providers import StaticProvider
from minio.error import MinioAdminException, S3Error

from soa_platform.files.s3 import S3Storage, endpoint_parts, http_client, storage_errors
from soa_platform.files.storage import StorageError
from soa_platform.settings import PlatformSettings

log = logging.getLogger(__name__)

Progress = Callable[[str], None]

# statuses with which a server says "no such admin API here" (moto: 404 NoSuchBucket "minio")
_NO_ADMIN_API = frozenset({"400", "404", "405", "426", "501"})


@dataclass(frozen=True)
class StorageInitReport:
    """What `init_storage` found or changed; `changed` is False on a run with nothing to do."""

    driver: str
    bucket: str
    bucket_created: bool = False
    versioning: str = "Off"  # Enabled | Suspended | Off | unsupported
    versioning_changed: bool = False
    app_user: str = "skipped"  # created | secret reset | unchanged | skipped: <why>
    policy: str = "skipped"  # created | updated | attached (or both) | unchanged | skipped

    @property
    def changed(self) -> bool:
        untouched = ("unchanged", "skipped")
        return (
            self.bucket_created
            or self.versioning_changed
            or not self.app_user.startswith(untouched)
            or not self.policy.startswith(untouched)
        )


def app_policy_name(bucket: str) -> str:
    return f"soa-{bucket}-app"


def app_policy(bucket: str) -> dict[str, Any]:
    """Everything the api and worker do, on this bucket only (no bucket creation or deletion)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": [
                    "s3:GetBucketLocation",
                    "s3:GetBucketVersioning",
                    "s3:ListBucket",
                    "s3:ListBucketMultipartUploads",
                    "s3:ListBucketVersions",
                ],
                "Resource": [f"arn:aws:s3:::{bucket}"],
            },
            {
                "Effect": "Allow",
                "Action": [
                    "s3:AbortMultipartUpload",
                    "s3:DeleteObject",
                    "s3:DeleteObjectVersion",
                    "s3:GetObject",
                    "s3:GetObjectVersion",
                    "s3:ListMultipartUploadParts",
                    "s3:PutObject",
                ],
                "Resource": [f"arn:aws:s3:::{bucket}/*"],
            },
        ],
    }


async def init_storage(settings: PlatformSettings, *, progress: Progress | None = None) -> StorageInitReport:
    """Prepare the store the settings name; raise StorageError (with a safe message) when it cannot."""
    say = progress or log.info
    if settings.storage_driver == "local":
        from soa_platform.files.local import LocalStorage

        local = LocalStorage(settings)
        await local.ensure_ready(versioning=settings.storage_versioning)
        say(f"local storage ready in {local.root}")
        return StorageInitReport("local", str(local.root), versioning="unsupported", app_user="skipped: local driver")
    root_user = settings.s3_root_user.get_secret_value()
    root_password = settings.s3_root_password.get_secret_value()
    if not root_user or not root_password:
        raise StorageError("SOA_S3_ROOT_USER and SOA_S3_ROOT_PASSWORD are needed to prepare the object store")
    store = S3Storage(settings, access_key=root_user, secret_key=root_password)
    say(f"bucket {store.bucket} at {settings.s3_endpoint}")
    created, before, after = await store.prepare(versioning=settings.storage_versioning)
    say(f"  bucket {'created' if created else 'exists'}")
    say(f"  versioning {after or 'unsupported'}" + (f" (was {before})" if before != after else ""))
    report = StorageInitReport(
        "s3", store.bucket, created, after or "unsupported", versioning_changed=before != after and not created
    )
    user, policy = await asyncio.to_thread(_ensure_app_user, settings, root_user, root_password, say)
    return StorageInitReport(**{**report.__dict__, "app_user": user, "policy": policy})


def _ensure_app_user(settings: PlatformSettings, root_user: str, root_password: str, say: Progress) -> tuple[str, str]:
    """The app's access key with the bucket policy attached, via MinIO's admin API when there is one."""
    access_key = settings.s3_access_key.get_secret_value()
    secret_key = settings.s3_secret_key.get_secret_value()
    if not access_key or not secret_key:
        say("  app user: skipped (SOA_S3_ACCESS_KEY / SOA_S3_SECRET_KEY not set)")
        return "skipped: no app credential", "skipped"
    if access_key == root_user:
        say("  app user: skipped (the app uses the root credential)")
        return "skipped: app uses the root credential", "skipped"
    endpoint, secure = endpoint_parts(settings.s3_endpoint)
    admin = MinioAdmin(
        endpoint=endpoint,
        credentials=StaticProvider(root_user, root_password),
        region=settings.s3_region,
        secure=secure,
        http_client=http_client(),
    )
    with storage_errors("admin API"):
        try:
            users: dict[str, dict[str, Any]] = json.loads(admin.user_list() or "{}")
        except MinioAdminException as error:
            if error._code not in _NO_ADMIN_API:
                raise StorageError(f"admin API: the server refused the root credential (HTTP {error._code})") from None
            say("  app user: skipped (this server has no MinIO admin API; create the app's key by hand)")
            return "skipped: no admin API", "skipped"
        user = _ensure_user(admin, settings, access_key, secret_key, access_key in users)
        say(f"  app user {access_key}: {user}")
        policy = _ensure_policy(admin, settings.s3_bucket, access_key, users.get(access_key, {}))
        say(f"  policy {app_policy_name(settings.s3_bucket)}: {policy}")
    return user, policy


def _ensure_user(admin: MinioAdmin, settings: PlatformSettings, access_key: str, secret_key: str, exists: bool) -> str:
    if exists and _credential_works(settings, access_key, secret_key):
        return "unchanged"
    admin.user_add(access_key, secret_key)  # also resets the secret of an existing user
    return "secret reset" if exists else "created"


def _credential_works(settings: PlatformSettings, access_key: str, secret_key: str) -> bool:
    """Whether the server accepts the app's secret (the admin API never reveals it to compare)."""
    endpoint, secure = endpoint_parts(settings.s3_endpoint)
    client = Minio(
        endpoint, access_key, secret_key, secure=secure, region=settings.s3_region, http_client=http_client()
    )
    try:
        client.bucket_exists(settings.s3_bucket)
    except S3Error:  # any refusal (unknown key, wrong secret): set the secret again
        return False
    return True


def _ensure_policy(admin: MinioAdmin, bucket: str, access_key: str, user: dict[str, Any]) -> str:
    name, wanted = app_policy_name(bucket), app_policy(bucket)
    outcome = "unchanged"
    try:
        current = json.loads(admin.policy_info(name))
    except MinioAdminException:
        current = None
    if current is None or _statements(current.get("Policy", current)) != _statements(wanted):
        admin.policy_add(name, policy=wanted)
        outcome = "created" if current is None else "updated"
    attached = {item.strip() for item in str(user.get("policyName", "")).split(",") if item.strip()}
    if name not in attached:
        try:
            admin.attach_policy([name], user=access_key)
        except MinioAdminException as error:
            if error._code not in _NO_ADMIN_API:
                raise
            admin.policy_set(name, user=access_key)  # MinIO gateways (JuiceFS) predate attach
        outcome = "attached" if outcome == "unchanged" else f"{outcome}, attached"
    return outcome


def _statements(policy: dict[str, Any]) -> set[tuple[str, frozenset[str], frozenset[str]]]:
    """A policy's meaning, whatever order or list/str form the server gives back."""

    def as_set(value: Any) -> frozenset[str]:
        return frozenset([value] if isinstance(value, str) else value or [])

    return {
        (str(item.get("Effect")), as_set(item.get("Action")), as_set(item.get("Resource")))
        for item in policy.get("Statement", [])
    }
