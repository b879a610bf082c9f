"""Which object store this process uses: the configured driver, or none (files disabled)."""

from __future__ import annotations

from soa_platform.files.storage import Storage, create_storage
from soa_platform.settings import PlatformSettings


def storage_configured(settings: PlatformSettings) -> bool:
    """Files are on and their driver has what it needs (s3: endpoint and bucket; local: a directory)."""
    if not settings.storage_enabled:
        return False
    if settings.storage_driver == "s3":
        return bool(settings.s3_endpoint and settings.s3_bucket)
    return bool(settings.storage_local_dir)


def configured_storage(settings: PlatformSettings) -> Storage | None:
    """The store of this tenant, or None when files are disabled or not configured."""
    return create_storage(settings) if storage_configured(settings) else None
