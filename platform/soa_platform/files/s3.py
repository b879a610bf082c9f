"""The S3 driver: one tenant's bucket on MinIO (or any S3 server) through the `minio` SDK.

The SDK is synchronous, so every network call runs in a worker thread. Presigned URLs are signed
by a second client configured with the public endpoint and the region, so presigning makes no
network call (without a region the SDK would ask the server for the bucket's location).
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TypeVar
from urllib.parse import urlsplit

import urllib3
from minio import Minio
from minio.datatypes import Object as S3Object
from minio.datatypes import Part
from minio.deleteobjects import DeleteObject
from minio.error import InvalidResponseError, MinioAdminException, MinioException, S3Error, ServerError
from minio.helpers import DictType
from minio.versioningconfig import VersioningConfig
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from urllib3 import BaseHTTPResponse

from soa_platform.files.disposition import attachment_disposition
from soa_platform.files.storage import CompletedPart, ObjectInfo, PresignedRequest, StorageError, Usage
from soa_platform.settings import PlatformSettings

T = TypeVar("T")

ENABLED, SUSPENDED = "Enabled", "Suspended"  # S3's versioning states

# what S3 servers answer for a missing object (HEAD has no body, so the SDK names the code itself)
_MISSING_OBJECT = frozenset({"NoSuchKey", "NoSuchObject", "NoSuchVersion", "ResourceNotFound"})
_NOT_IMPLEMENTED = frozenset({"NotImplemented", "XNotImplemented"})


def endpoint_parts(url: str) -> tuple[str, bool]:
    """`http://host:9000` as the SDK wants it: ("host:9000", secure=False)."""
    parts = urlsplit(url if "://" in url else f"https://{url}")
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path.strip("/"):
        raise StorageError(f"S3 endpoint must be http(s)://host[:port] without a path, got {parts.scheme}://…")
    return parts.netloc, parts.scheme == "https"


CONNECTIONS = 16  # pooled connections to the store, and threads making S3 calls: a batch's HEADs go at once
# the SDK blocks: its calls run in threads of their own (one pool per process), not in the loop's small default
# pool (6 threads on 2 cores), so the 10 HEADs of a batch completion go out together
_THREADS = ThreadPoolExecutor(max_workers=CONNECTIONS, thread_name_prefix="soa-s3")


def http_client() -> urllib3.PoolManager:
    """Short connect timeout and few retries: a readiness check must fail in seconds, not minutes."""
    return urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=5.0, read=120.0),
        maxsize=CONNECTIONS,
        retries=urllib3.Retry(total=2, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
    )


def describe_error(action: str, error: Exception) -> str:
    """A one-line reason without credentials or signed URLs (S3 error codes and messages carry neither)."""
    if isinstance(error, S3Error):
        return f"{action}: {error.code}: {error.message}"
    if isinstance(error, MinioAdminException):
        return f"{action}: the admin API refused the request (HTTP {error._code})"
    if isinstance(error, InvalidResponseError | ServerError):
        return f"{action}: unexpected response from the object store ({type(error).__name__})"
    if isinstance(error, urllib3.exceptions.HTTPError | OSError):
        return f"{action}: the object store cannot be reached ({type(error).__name__})"
    return f"{action}: {type(error).__name__}"


@contextmanager
def storage_errors(action: str) -> Iterator[None]:
    """Turn SDK and transport failures into StorageError with a safe message."""
    try:
        yield
    except StorageError:
        raise
    except (MinioException, MinioAdminException, urllib3.exceptions.HTTPError, OSError, ValueError) as error:
        raise StorageError(describe_error(action, error)) from None  # the cause may hold a signed URL


class S3Storage:
    """`Storage` on one bucket of an S3 server (the tenant's MinIO in production)."""

    driver = "s3"

    def __init__(
        self,
        settings: PlatformSettings,
        *,
        access_key: str | None = None,
        secret_key: str | None = None,
        tracer_provider: trace.TracerProvider | None = None,
    ) -> None:
        """`access_key`/`secret_key` override the app credential (the bootstrap uses the root user);
        spans go to `tracer_provider`, by default the process's global one."""
        self.tracer = trace.get_tracer(__name__, tracer_provider=tracer_provider)
        if not settings.s3_endpoint or not settings.s3_bucket:
            raise StorageError("the s3 driver needs SOA_S3_ENDPOINT and SOA_S3_BUCKET")
        self.bucket = settings.s3_bucket
        self.region = settings.s3_region
        access = access_key if access_key is not None else settings.s3_access_key.get_secret_value()
        secret = secret_key if secret_key is not None else settings.s3_secret_key.get_secret_value()
        endpoint, secure = endpoint_parts(settings.s3_endpoint)
        public_endpoint, public_secure = endpoint_parts(settings.s3_public_endpoint or settings.s3_endpoint)
        self.client = Minio(endpoint, access, secret, secure=secure, region=self.region, http_client=http_client())
        # signs only, never connects: browsers reach the store through the public endpoint
        self.signer = Minio(public_endpoint, access, secret, secure=public_secure, region=self.region)

    async def _call(self, operation: str, function: Callable[[], T], *, key: str | None = None) -> T:
        """One S3 request (or a few) in a worker thread, traced as `s3 <operation>`."""
        attributes = {"s3.bucket": self.bucket, **({"s3.key": key} if key is not None else {})}
        with (
            self.tracer.start_as_current_span(f"s3 {operation}", kind=SpanKind.CLIENT, attributes=attributes),
            storage_errors(f"{operation} {key or self.bucket}"),
        ):
            context = contextvars.copy_context()  # the span's context goes along into the thread
            return await asyncio.get_running_loop().run_in_executor(_THREADS, context.run, function)

    # bootstrap and readiness

    async def ensure_ready(self, *, versioning: bool) -> None:
        """Create the bucket when missing; change versioning only when it differs from `versioning`."""
        await self.prepare(versioning=versioning)

    async def prepare(self, *, versioning: bool) -> tuple[bool, str | None, str | None]:
        """`ensure_ready`, telling what it did: (bucket created, versioning before, versioning after)."""
        created = False
        if not await self._call("check bucket", lambda: self.client.bucket_exists(self.bucket)):
            await self._call("create bucket", self._make_bucket)
            created = True
        before = after = await self.versioning_status()
        if versioning and before != ENABLED:
            if before is None:
                raise StorageError(f"the object store does not support versioning (bucket {self.bucket})")
            after = ENABLED
        elif not versioning and before == ENABLED:
            after = SUSPENDED  # S3 cannot turn versioning off once on, only suspend it
        if after != before:
            await self._set_versioning(str(after))
        return created, before, after

    def _make_bucket(self) -> None:
        try:
            self.client.make_bucket(self.bucket, location=self.region)
        except S3Error as error:
            if error.code != "BucketAlreadyOwnedByYou":  # another bootstrap won the race
                raise

    async def versioning_status(self) -> str | None:
        """The bucket's versioning ("Enabled", "Suspended" or "Off"); None when the server has none (JuiceFS)."""

        def read() -> str | None:
            try:
                config = self.client.get_bucket_versioning(self.bucket)
            except S3Error as error:
                if error.code in _NOT_IMPLEMENTED:
                    return None
                raise
            return str(config.status or "Off")  # a bucket never versioned has no status

        return await self._call("read versioning", read)

    async def _set_versioning(self, status: str) -> None:
        config = VersioningConfig(status)
        await self._call("set versioning", lambda: self.client.set_bucket_versioning(self.bucket, config))

    async def check(self) -> None:
        if not await self._call("check bucket", lambda: self.client.bucket_exists(self.bucket)):
            raise StorageError(f"bucket {self.bucket} does not exist (run `soa storage init`)")

    # presigned transfers (no network)

    def presign_put(self, key: str, *, content_type: str, expires: timedelta) -> PresignedRequest:
        """A PUT of the whole object. The SDK signs only the host header, so the Content-Type the client
        must send is returned in `headers` (the store records it) but not enforced by the signature."""
        with storage_errors(f"presign PUT {key}"):
            url = self.signer.get_presigned_url("PUT", self.bucket, key, expires)
        return PresignedRequest("PUT", url, _expiry(expires), {"Content-Type": content_type})

    def presign_get(
        self,
        key: str,
        *,
        expires: timedelta,
        filename: str,
        content_type: str,
        version_id: str | None = None,
    ) -> PresignedRequest:
        response_headers: DictType = {
            "response-content-disposition": attachment_disposition(filename),
            "response-content-type": content_type,
        }
        with storage_errors(f"presign GET {key}"):
            url = self.signer.get_presigned_url(
                "GET", self.bucket, key, expires, response_headers=response_headers, version_id=version_id
            )
        return PresignedRequest("GET", url, _expiry(expires))

    def presign_part(self, key: str, upload_id: str, part_number: int, *, expires: timedelta) -> PresignedRequest:
        if not 1 <= part_number <= 10_000:
            raise StorageError(f"part number must be 1..10000, got {part_number}")
        params: DictType = {"partNumber": str(part_number), "uploadId": upload_id}
        with storage_errors(f"presign part {part_number} of {key}"):
            url = self.signer.get_presigned_url("PUT", self.bucket, key, expires, extra_query_params=params)
        return PresignedRequest("PUT", url, _expiry(expires))

    # multipart: the SDK has no public API for these S3 calls, only its own (stable) underscore methods

    async def start_multipart(self, key: str, *, content_type: str) -> str:
        headers: DictType = {"Content-Type": content_type}
        return await self._call(
            "start multipart upload", lambda: self.client._create_multipart_upload(self.bucket, key, headers), key=key
        )

    async def complete_multipart(self, key: str, upload_id: str, parts: Sequence[CompletedPart]) -> None:
        if not parts:
            raise StorageError(f"complete multipart upload of {key}: no parts")
        sdk_parts = [Part(part.number, part.etag.strip('"')) for part in sorted(parts, key=lambda p: p.number)]
        await self._call(
            "complete multipart upload",
            lambda: self.client._complete_multipart_upload(self.bucket, key, upload_id, sdk_parts),
            key=key,
        )

    async def abort_multipart(self, key: str, upload_id: str) -> None:
        def abort() -> None:
            try:
                self.client._abort_multipart_upload(self.bucket, key, upload_id)
            except S3Error as error:
                if error.code != "NoSuchUpload":  # unknown or already finished: nothing to abort
                    raise

        await self._call("abort multipart upload", abort, key=key)

    # objects

    async def stat(self, key: str) -> ObjectInfo | None:
        def head() -> ObjectInfo | None:
            try:
                found = self.client.stat_object(self.bucket, key)
            except S3Error as error:
                if error.code in _MISSING_OBJECT:
                    return None
                raise
            return ObjectInfo(
                key=key,
                size=int(found.size or 0),
                etag=(found.etag or "").strip('"'),
                version_id=found.version_id if found.version_id not in (None, "null") else None,
                content_type=found.content_type,
            )

        return await self._call("stat", head, key=key)

    async def read(self, key: str, *, chunk_size: int = 1024 * 1024) -> AsyncIterator[bytes]:
        response = await self._call("read", lambda: self.client.get_object(self.bucket, key), key=key)
        try:
            while chunk := await _read_chunk(response, chunk_size, key):
                yield chunk
        finally:
            response.close()
            response.release_conn()

    async def delete(self, key: str) -> None:
        """Every version of `key` (a versioned bucket keeps old ones after a plain delete)."""

        def remove_all() -> None:
            versions = [
                DeleteObject(key, found.version_id if found.version_id not in (None, "null") else None)
                for found in self._versions(key)
                if found.object_name == key
            ]
            if not versions:
                self.client.remove_object(self.bucket, key)  # a server without version listing
                return
            for failure in self.client.remove_objects(self.bucket, versions):
                if failure.code not in _MISSING_OBJECT:
                    raise StorageError(f"delete {key}: {failure.code}: {failure.message}")

        await self._call("delete", remove_all, key=key)

    def _versions(self, prefix: str) -> list[S3Object]:
        """Every version (or, without versioning support, every object) under `prefix`."""
        try:
            return list(self.client.list_objects(self.bucket, prefix=prefix, recursive=True, include_version=True))
        except S3Error as error:
            if error.code not in _NOT_IMPLEMENTED:
                raise
            return list(self.client.list_objects(self.bucket, prefix=prefix, recursive=True))

    async def usage(self, prefix: str = "") -> Usage:
        """Bytes of every stored version; objects counts keys whose latest version is not deleted."""

        def total() -> Usage:
            size = objects = 0
            for found in self._versions(prefix):
                if found.is_delete_marker or found.is_dir:  # JuiceFS lists emptied folders as `name/`
                    continue
                size += int(found.size or 0)
                if (found.is_latest or "true").lower() == "true":  # None: a listing without versions
                    objects += 1
            return Usage(bytes=size, objects=objects)

        return await self._call("usage", total, key=prefix)


async def _read_chunk(response: BaseHTTPResponse, size: int, key: str) -> bytes:
    with storage_errors(f"read {key}"):
        return await asyncio.to_thread(response.read, size)


def _expiry(expires: timedelta) -> datetime:
    return datetime.now(UTC) + expires
