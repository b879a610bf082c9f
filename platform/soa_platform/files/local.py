"""The local driver: objects in a directory, moved through signed expiring URLs of the api itself.

For the embedded default only (`soa up`). A presigned request is `{public_url}/v1/files/blob/{token}`
where the token is a short-lived HS256 JWT (the session key) bound to this tenant, one method and one
key — the same contract as an S3 presigned URL, served by `files.blob_endpoints`.

Layout under `storage_local_dir`: `objects/<key>` (the bytes), `meta/<key>.json` (type and ETag),
`multipart/<upload id>/` (parts until completed), `tmp/` (writes in progress; renamed when done).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import jwt

from soa_platform.files.storage import CompletedPart, ObjectInfo, PresignedRequest, StorageError, Usage
from soa_platform.settings import PlatformSettings

log = logging.getLogger(__name__)

BLOB_PATH = "/v1/files/blob"
MIN_PART_BYTES = 5 * 1024 * 1024  # S3's rule for every part but the last: keep the drivers interchangeable
_UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")
_WRITE_BATCH = 1024 * 1024  # bytes gathered before one write in a worker thread


class BlobRefused(Exception):
    """A blob request the local driver refuses; `status` is the HTTP status S3 would answer."""

    status = 403

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BlobTooLarge(BlobRefused):
    status = 413


class BlobNotFound(BlobRefused):
    status = 404


@dataclass(frozen=True)
class BlobGrant:
    """What a verified token allows: one method on one key (or one part of one upload)."""

    method: str
    key: str
    content_type: str | None = None
    filename: str | None = None
    max_size: int | None = None
    upload_id: str | None = None
    part_number: int | None = None


class LocalStorage:
    """`Storage` on a directory, for one tenant's embedded platform."""

    driver = "local"

    def __init__(self, settings: PlatformSettings) -> None:
        if not settings.storage_local_dir:
            raise StorageError("the local driver needs SOA_STORAGE_LOCAL_DIR")
        self.root = Path(settings.storage_local_dir).resolve()
        self.objects = self.root / "objects"
        self.meta = self.root / "meta"
        self.uploads = self.root / "multipart"
        self.tmp = self.root / "tmp"
        self.base_url = f"{settings.public_url.rstrip('/')}{BLOB_PATH}"
        self.max_upload_bytes = settings.storage_max_upload_bytes
        self._key = settings.session_key.get_secret_value()
        self._audience = f"{settings.token_audience}:blob"  # a blob token of one tenant is refused by another
        self._issuer = settings.token_issuer

    # bootstrap and readiness

    async def ensure_ready(self, *, versioning: bool) -> None:
        """Create the directories; versioning is not supported here and only warned about."""
        for directory in (self.objects, self.meta, self.uploads, self.tmp):
            await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
        if versioning:
            log.warning("storage versioning is on, but the local driver keeps only the latest version")

    async def check(self) -> None:
        if not await asyncio.to_thread(os.access, self.objects, os.W_OK):
            raise StorageError(f"the storage directory {self.objects} is missing or not writable")

    # keys and paths

    def object_path(self, key: str) -> Path:
        """The file of `key`; refuses keys that are empty, absolute or climb out of the root."""
        parts = key.split("/")
        if not key or len(key.encode()) > 1024 or "\\" in key or "\x00" in key or "" in parts:
            raise StorageError(f"invalid object key {key!r}")
        if any(part in (".", "..") for part in parts):
            raise StorageError(f"invalid object key {key!r}")
        path = self.objects.joinpath(*parts)
        if not path.resolve().is_relative_to(self.objects):  # a symlink planted inside the root
            raise StorageError(f"invalid object key {key!r}")
        return path

    def _meta_path(self, key: str) -> Path:
        self.object_path(key)
        return self.meta.joinpath(*key.split("/")).with_name(key.rsplit("/", 1)[-1] + ".json")

    def _upload_dir(self, upload_id: str) -> Path:
        if not _UPLOAD_ID.match(upload_id):
            raise BlobNotFound("no such multipart upload")
        return self.uploads / upload_id

    # signed tokens

    def _presign(self, method: str, expires: timedelta, **claims: Any) -> tuple[str, datetime]:
        expires_at = datetime.now(UTC) + expires
        payload = {"aud": self._audience, "iss": self._issuer, "exp": expires_at, "m": method, **claims}
        token = jwt.encode({k: v for k, v in payload.items() if v is not None}, self._key, algorithm="HS256")
        return f"{self.base_url}/{token}", expires_at

    def verify_token(self, token: str, method: str) -> BlobGrant:
        """The grant a token carries; BlobRefused when expired, tampered, of another tenant or method."""
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=["HS256"],
                audience=self._audience,
                issuer=self._issuer,
                options={"require": ["exp", "aud", "iss"]},
            )
        except jwt.ExpiredSignatureError:
            raise BlobRefused("this link has expired; ask for a new one") from None
        except (jwt.InvalidAudienceError, jwt.InvalidIssuerError):
            raise BlobRefused("this link belongs to another tenant") from None
        except jwt.PyJWTError:
            raise BlobRefused("this link is not valid (its signature does not match)") from None
        if claims.get("m") != method:
            raise BlobRefused(f"this link allows {claims.get('m')} only, not {method}")
        return BlobGrant(
            method=method,
            key=str(claims["k"]),
            content_type=claims.get("ct"),
            filename=claims.get("fn"),
            max_size=claims.get("max"),
            upload_id=claims.get("uid"),
            part_number=claims.get("pn"),
        )

    def presign_put(self, key: str, *, content_type: str, expires: timedelta) -> PresignedRequest:
        self.object_path(key)
        url, expires_at = self._presign("PUT", expires, k=key, ct=content_type, max=self.max_upload_bytes)
        return PresignedRequest("PUT", url, expires_at, {"Content-Type": content_type})

    def presign_get(
        self,
        key: str,
        *,
        expires: timedelta,
        filename: str,
        content_type: str,
        version_id: str | None = None,
    ) -> PresignedRequest:
        """`version_id` is ignored: this driver keeps one version."""
        self.object_path(key)
        url, expires_at = self._presign("GET", expires, k=key, fn=filename, ct=content_type)
        return PresignedRequest("GET", url, expires_at)

    def presign_part(self, key: str, upload_id: str, part_number: int, *, expires: timedelta) -> PresignedRequest:
        self.object_path(key)
        if not 1 <= part_number <= 10_000:
            raise StorageError(f"part number must be 1..10000, got {part_number}")
        url, expires_at = self._presign("PUT", expires, k=key, uid=upload_id, pn=part_number, max=self.max_upload_bytes)
        return PresignedRequest("PUT", url, expires_at)

    # writes from the blob endpoint

    async def receive(self, grant: BlobGrant, body: AsyncIterator[bytes], *, content_type: str | None) -> str:
        """Stream a PUT body to disk within the grant's limits; returns the ETag (hex MD5, as S3's)."""
        if grant.part_number is None and _media_type(content_type) != _media_type(grant.content_type):
            raise BlobRefused(f"this link requires Content-Type: {grant.content_type}")
        if grant.upload_id is not None:
            upload = self._upload_dir(grant.upload_id)
            if await asyncio.to_thread(self._upload_key, upload) != grant.key:
                raise BlobNotFound("no such multipart upload")
            target = upload / f"{grant.part_number:05d}"
        else:
            target = self.object_path(grant.key)
        await asyncio.to_thread(self.tmp.mkdir, parents=True, exist_ok=True)
        handle = await asyncio.to_thread(_open_temp, self.tmp)
        try:
            etag = await self._stream_to(handle, body, grant.max_size)
            await asyncio.to_thread(_place, handle.name, target)
        except BaseException:
            await asyncio.to_thread(_discard, handle.name)
            raise
        if grant.upload_id is None:
            size = target.stat().st_size
            await asyncio.to_thread(self._write_meta, grant.key, grant.content_type, etag, size)
        return etag

    async def _stream_to(self, handle: IO[bytes], body: AsyncIterator[bytes], max_size: int | None) -> str:
        digest, size, batch = hashlib.md5(usedforsecurity=False), 0, bytearray()
        try:
            async for chunk in body:
                size += len(chunk)
                if max_size is not None and size > max_size:
                    raise BlobTooLarge(f"the upload is larger than this link allows ({max_size} bytes)")
                digest.update(chunk)
                batch += chunk
                if len(batch) >= _WRITE_BATCH:
                    await asyncio.to_thread(handle.write, bytes(batch))
                    batch.clear()
            await asyncio.to_thread(_finish, handle, bytes(batch))
        finally:
            await asyncio.to_thread(handle.close)
        return digest.hexdigest()

    def _write_meta(self, key: str, content_type: str | None, etag: str, size: int) -> None:
        path = self._meta_path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = json.dumps({"content_type": content_type, "etag": etag, "size": size}).encode()
        with tempfile.NamedTemporaryFile(dir=self.tmp, delete=False) as handle:
            handle.write(data)
        os.replace(handle.name, path)

    # multipart

    async def start_multipart(self, key: str, *, content_type: str) -> str:
        self.object_path(key)
        upload_id = secrets.token_hex(16)
        upload = self.uploads / upload_id
        data = json.dumps({"key": key, "content_type": content_type})

        def create() -> None:
            upload.mkdir(parents=True)
            (upload / "upload.json").write_text(data)

        await asyncio.to_thread(create)
        return upload_id

    @staticmethod
    def _upload_key(upload: Path) -> str | None:
        try:
            return str(json.loads((upload / "upload.json").read_text())["key"])
        except (OSError, ValueError, KeyError):
            return None

    async def complete_multipart(self, key: str, upload_id: str, parts: Sequence[CompletedPart]) -> None:
        """Concatenate the parts in order into the object, checking each part's ETag on the way."""
        try:
            upload = self._upload_dir(upload_id)
        except BlobNotFound:
            raise StorageError(f"complete multipart upload of {key}: NoSuchUpload") from None
        await asyncio.to_thread(self._complete, key, upload, sorted(parts, key=lambda part: part.number))

    def _complete(self, key: str, upload: Path, parts: list[CompletedPart]) -> None:
        action = f"complete multipart upload of {key}"
        if self._upload_key(upload) != key:
            raise StorageError(f"{action}: NoSuchUpload")
        if not parts or len({part.number for part in parts}) != len(parts):
            raise StorageError(f"{action}: InvalidPart: parts must be listed once each")
        content_type = json.loads((upload / "upload.json").read_text()).get("content_type")
        target = self.object_path(key)
        self.tmp.mkdir(parents=True, exist_ok=True)
        digests: list[bytes] = []
        size = 0
        with tempfile.NamedTemporaryFile(dir=self.tmp, delete=False) as out:
            try:
                for index, part in enumerate(parts):
                    digest = self._copy_part(upload / f"{part.number:05d}", out, action, part)
                    part_size = (upload / f"{part.number:05d}").stat().st_size
                    if index < len(parts) - 1 and part_size < MIN_PART_BYTES:
                        raise StorageError(f"{action}: EntityTooSmall: part {part.number} is under 5 MiB")
                    digests.append(digest)
                    size += part_size
                out.flush()
                os.fsync(out.fileno())
            except BaseException:
                out.close()
                _discard(out.name)
                raise
        _place(out.name, target)
        etag = f"{hashlib.md5(b''.join(digests), usedforsecurity=False).hexdigest()}-{len(parts)}"
        self._write_meta(key, content_type, etag, size)
        shutil.rmtree(upload, ignore_errors=True)

    @staticmethod
    def _copy_part(path: Path, out: IO[bytes], action: str, part: CompletedPart) -> bytes:
        digest = hashlib.md5(usedforsecurity=False)
        try:
            with path.open("rb") as source:
                while chunk := source.read(_WRITE_BATCH):
                    digest.update(chunk)
                    out.write(chunk)
        except FileNotFoundError:
            raise StorageError(f"{action}: InvalidPart: part {part.number} was not uploaded") from None
        if digest.hexdigest() != part.etag.strip('"'):
            raise StorageError(f"{action}: InvalidPart: the ETag of part {part.number} does not match")
        return digest.digest()

    async def abort_multipart(self, key: str, upload_id: str) -> None:
        with contextlib.suppress(BlobNotFound):
            upload = self._upload_dir(upload_id)
            await asyncio.to_thread(shutil.rmtree, upload, True)

    # objects

    async def stat(self, key: str) -> ObjectInfo | None:
        path = self.object_path(key)

        def read_stat() -> ObjectInfo | None:
            try:
                size = path.stat().st_size
            except (FileNotFoundError, NotADirectoryError):
                return None
            if path.is_dir():
                return None
            try:
                meta = json.loads(self._meta_path(key).read_text())
            except (OSError, ValueError):
                meta = {}  # written just after the object: a crash in between leaves only the bytes
            return ObjectInfo(key=key, size=size, etag=str(meta.get("etag", "")), content_type=meta.get("content_type"))

        return await asyncio.to_thread(read_stat)

    async def read(self, key: str, *, chunk_size: int = 1024 * 1024) -> AsyncIterator[bytes]:
        path = self.object_path(key)
        try:
            handle = await asyncio.to_thread(path.open, "rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise StorageError(f"read {key}: NoSuchKey") from None
        try:
            while chunk := await asyncio.to_thread(handle.read, chunk_size):
                yield chunk
        finally:
            await asyncio.to_thread(handle.close)

    async def delete(self, key: str) -> None:
        path, meta = self.object_path(key), self._meta_path(key)

        def remove() -> None:
            for file, top in ((path, self.objects), (meta, self.meta)):
                with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                    file.unlink()
                _prune_empty_parents(file.parent, top)

        await asyncio.to_thread(remove)

    async def usage(self, prefix: str = "") -> Usage:
        def total() -> Usage:
            size = objects = 0
            for directory, _dirs, files in os.walk(self.objects):
                for name in files:
                    path = Path(directory, name)
                    if path.relative_to(self.objects).as_posix().startswith(prefix):
                        size += path.stat().st_size
                        objects += 1
            return Usage(bytes=size, objects=objects)

        return await asyncio.to_thread(total)


def _media_type(value: str | None) -> str:
    """`Text/Plain; charset=x` and `text/plain; charset=x` are one type; parameters must match too."""
    return ";".join(part.strip() for part in (value or "").lower().split(";"))


def _open_temp(directory: Path) -> IO[bytes]:
    return tempfile.NamedTemporaryFile(dir=directory, delete=False)


def _finish(handle: IO[bytes], rest: bytes) -> None:
    handle.write(rest)
    handle.flush()
    os.fsync(handle.fileno())  # the upload is acknowledged only once its bytes are on disk


def _place(temp: str, target: Path) -> None:
    """Atomic: readers see the old object or the new one, never a partial file."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(temp, target)
    except (NotADirectoryError, IsADirectoryError, FileExistsError):
        raise StorageError("this key conflicts with an existing key (a file cannot also be a folder)") from None


def _discard(temp: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(temp)


def _prune_empty_parents(directory: Path, top: Path) -> None:
    while directory != top and directory.is_relative_to(top):
        try:
            directory.rmdir()
        except OSError:
            return
        directory = directory.parent
