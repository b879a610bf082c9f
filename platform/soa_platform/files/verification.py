"""Verifying an uploaded file before anyone may download it: the object exists, has the declared size,
its content matches the declared type and (when clamd is configured) carries no known virus.

The verdict is written with a conditional update (`WHERE status = 'pending'`) in a short transaction
after the object was read, so a worker killed mid-way wrote nothing and the redelivered task decides
once; a second run finds the file decided and returns.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

from opentelemetry import trace

from soa_platform.audit.service import record
from soa_platform.db import Database, utcnow
from soa_platform.files import repository
from soa_platform.files.models import FileStatus
from soa_platform.files.scan import scan_stream
from soa_platform.files.sniff import SNIFF_BYTES, matches, sniff
from soa_platform.files.storage import Storage
from soa_platform.settings import PlatformSettings

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)


@dataclass(frozen=True)
class Upload:
    """What verification needs of the row, read before the (long) look at the object."""

    id: int
    key: str
    size: int
    content_type: str


@dataclass(frozen=True)
class Verdict:
    status: FileStatus  # available | rejected
    reason: str = ""
    sha256: str | None = None
    detected_type: str | None = None
    version_id: str | None = None


def _reject(reason: str) -> Verdict:
    return Verdict(FileStatus.rejected, reason)


async def inspect(storage: Storage, settings: PlatformSettings, upload: Upload) -> Verdict:
    """Read the object once: size, SHA-256, the type of its first bytes and, optionally, clamd's verdict."""
    with tracer.start_as_current_span("files.verify.stat"):
        info = await storage.stat(upload.key)
    if info is None:
        return _reject("upload missing: nothing was stored at the upload URL")
    if info.size != upload.size:
        return _reject(f"size mismatch: declared {upload.size} bytes, received {info.size}")
    digest, head, total = hashlib.sha256(), bytearray(), 0

    async def tapped() -> AsyncIterator[bytes]:
        nonlocal total
        async for chunk in storage.read(upload.key):
            digest.update(chunk)
            total += len(chunk)
            if len(head) < SNIFF_BYTES:
                head.extend(chunk[: SNIFF_BYTES - len(head)])
            yield chunk

    virus = ""
    with tracer.start_as_current_span("files.verify.read") as span:
        if settings.clamd_address:
            span.set_attribute("soa.files.clamd", True)
            scanned = await scan_stream(settings.clamd_address, tapped())
            if scanned.too_large:
                return _reject("too large for the virus scanner (raise clamd's StreamMaxLength)")
            virus = scanned.signature if not scanned.clean else ""
        else:
            async for _ in tapped():
                pass
    sha256 = digest.hexdigest()
    if total != info.size:
        return _reject(f"the object changed while it was read ({total} of {info.size} bytes)")
    with tracer.start_as_current_span("files.verify.sniff"):
        detected = sniff(bytes(head))
    found = Verdict(FileStatus.available, sha256=sha256, detected_type=detected, version_id=info.version_id)
    if virus:
        return replace(found, status=FileStatus.rejected, reason=f"virus found: {virus}")
    if not matches(upload.content_type, detected):
        reason = f"content does not match its declared type: declared {upload.content_type}, found {detected}"
        return replace(found, status=FileStatus.rejected, reason=reason)
    return found


async def verify_file(db: Database, storage: Storage, settings: PlatformSettings, file_id: int) -> FileStatus | None:
    """Decide a completed upload; returns the new status, or None when there was nothing to decide."""
    with tracer.start_as_current_span("files.verify", attributes={"soa.file_id": file_id}) as span:
        async with db.unit_of_work() as uow:
            file = await repository.get(uow.session, file_id)
            if file is None or file.completed_at is None:
                return None
            upload = Upload(file.id, file.storage_key, file.size, file.content_type)
            status = file.status
        if status is FileStatus.rejected:
            await storage.delete(upload.key)  # a run killed between its verdict and this delete left the object
            return None
        if status is not FileStatus.pending:
            return None
        verdict = await inspect(storage, settings, upload)
        span.set_attribute("soa.files.status", verdict.status.value)
        async with db.unit_of_work() as uow:
            decided = await repository.finish_verification(
                uow.session, file_id, status=verdict.status, reject_reason=verdict.reason, sha256=verdict.sha256,
                detected_type=verdict.detected_type, version_id=verdict.version_id, verified_at=utcnow(),
            )  # fmt: skip
            if decided:
                action = "file.verified" if verdict.status is FileStatus.available else "file.rejected"
                await record(uow.session, action, target_type="file", target_id=file_id, reason=verdict.reason,
                             sha256=verdict.sha256)  # fmt: skip
        if not decided:
            return None  # deleted meanwhile, or another run decided first
        if verdict.status is FileStatus.rejected:
            await storage.delete(upload.key)  # its bytes are never served; a repeated task retries this
            log.info("file %d rejected: %s", file_id, verdict.reason)
        return verdict.status
