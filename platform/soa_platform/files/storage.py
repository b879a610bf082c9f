"""The object-storage interface every files code path uses, and the choice of driver.

Two drivers implement it: `s3.S3Storage` (the tenant's MinIO, or any S3 server, through the `minio`
SDK) and `local.LocalStorage` (a directory, served through signed expiring api URLs; embedded default
only). Nothing outside the drivers knows which one runs, so the S3 backend stays swappable.

Keys are opaque strings chosen by the files service (`files/<id>/<random>`); a driver never invents
keys. Transfers of file bytes never pass through the api in production: clients get presigned
requests and talk to the store directly.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from soa_platform.settings import PlatformSettings


@dataclass(frozen=True)
class PresignedRequest:
    """What a client sends, as is, to move bytes: method, URL, and the headers it must include."""

    method: str  # "PUT" | "GET"
    url: str
    expires_at: datetime
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str
    version_id: str | None = None
    content_type: str | None = None


@dataclass(frozen=True)
class Usage:
    bytes: int
    objects: int


@dataclass(frozen=True)
class CompletedPart:
    number: int  # 1-based
    etag: str


class StorageError(Exception):
    """The store refused or failed an operation; the message never contains credentials or signed URLs."""


class Storage(Protocol):
    """One tenant's bucket (or directory)."""

    driver: str  # "s3" | "local"

    async def ensure_ready(self, *, versioning: bool) -> None:
        """Idempotent bootstrap: the bucket exists and its versioning is as asked."""
        ...

    async def check(self) -> None:
        """Raise StorageError when the store cannot be reached (readiness)."""
        ...

    def presign_put(self, key: str, *, content_type: str, expires: timedelta) -> PresignedRequest: ...

    def presign_get(
        self,
        key: str,
        *,
        expires: timedelta,
        filename: str,
        content_type: str,
        version_id: str | None = None,
    ) -> PresignedRequest:
        """A GET that makes the browser save `filename` (Content-Disposition: attachment)."""
        ...

    async def start_multipart(self, key: str, *, content_type: str) -> str:
        """A new multipart upload's id."""
        ...

    def presign_part(self, key: str, upload_id: str, part_number: int, *, expires: timedelta) -> PresignedRequest: ...

    async def complete_multipart(self, key: str, upload_id: str, parts: Sequence[CompletedPart]) -> None: ...

    async def abort_multipart(self, key: str, upload_id: str) -> None:
        """Idempotent: aborting an unknown or finished upload is not an error."""
        ...

    async def stat(self, key: str) -> ObjectInfo | None:
        """The current version, or None when there is no such object."""
        ...

    def read(self, key: str, *, chunk_size: int = 1024 * 1024) -> AsyncIterator[bytes]:
        """The object's bytes in chunks (for checksums, type sniffing, virus scans in the worker)."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the object and, when versioned, every version of it. Idempotent."""
        ...

    async def usage(self, prefix: str = "") -> Usage:
        """Bytes and objects stored under `prefix` (all versions)."""
        ...


def create_storage(settings: PlatformSettings) -> Storage:
    """The driver the settings name."""
    if settings.storage_driver == "local":
        from soa_platform.files.local import LocalStorage

        return LocalStorage(settings)
    from soa_platform.files.s3 import S3Storage

    return S3Storage(settings)
