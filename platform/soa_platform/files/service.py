"""Files rules: announcing uploads within size and quota, completing them, who may see, download and
delete what, attaching files to messages and removing them with their messages.

Storage calls that change the store run before the transaction commits and are idempotent: if the commit
fails, repeating the operation (the client's retry, the next retention run) finishes the job.
"""

from __future__ import annotations

import asyncio
import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from soa_platform.audit.service import record
from soa_platform.context import Platform
from soa_platform.db import UnitOfWork, utcnow
from soa_platform.errors import Conflict, DomainError, Forbidden, InvalidRequest, NotFound, PayloadTooLarge
from soa_platform.files import repository
from soa_platform.files.models import File, FileStatus
from soa_platform.files.schemas import AttachmentOut, FileCreate, PartETag
from soa_platform.files.storage import CompletedPart, PresignedRequest, Storage, StorageError, Usage
from soa_platform.identity.models import Role, User

VERIFY = "soa.files.verify"
VERIFY_MANY = "soa.files.verify_many"  # a batch's verifications: one publish in the request, the worker fans out
STORAGE_DISABLED = "file storage is disabled for this workspace"
MAX_ATTACHMENTS = 10
MAX_PARTS = 10_000  # S3's limit on parts of one multipart upload
MIB = 1024 * 1024


class QuotaExceeded(DomainError):
    status_code = 403
    code = "quota_exceeded"


@dataclass(frozen=True)
class UploadPlan:
    """Where the client sends the bytes of a pending file."""

    kind: str  # "single" | "multipart"
    request: PresignedRequest | None = None
    upload_id: str | None = None
    part_size: int | None = None
    parts: tuple[tuple[int, PresignedRequest], ...] = ()


def require_storage(platform: Platform) -> Storage:
    if platform.storage is None:
        raise NotFound(STORAGE_DISABLED)
    return platform.storage


def part_size(platform: Platform, size: int) -> int:
    """Bytes per part: the configured size, larger when the file would otherwise need too many parts."""
    return max(platform.settings.storage_multipart_part_mib * MIB, math.ceil(size / MAX_PARTS))


def is_multipart(platform: Platform, size: int) -> bool:
    return size > platform.settings.storage_multipart_part_mib * MIB


def upload_plan(platform: Platform, storage: Storage, file: File) -> UploadPlan | None:
    """Fresh presigned requests for a pending file's bytes; None once its upload was completed."""
    if file.status is not FileStatus.pending or file.completed_at is not None:
        return None
    expires = timedelta(seconds=platform.settings.storage_upload_url_seconds)
    if file.upload_id is None:
        return UploadPlan("single", request=storage.presign_put(file.storage_key, content_type=file.content_type,
                                                                 expires=expires))  # fmt: skip
    step = part_size(platform, file.size)
    parts = tuple(
        (number, storage.presign_part(file.storage_key, file.upload_id, number, expires=expires))
        for number in range(1, math.ceil(file.size / step) + 1)
    )
    return UploadPlan("multipart", upload_id=file.upload_id, part_size=step, parts=parts)


def _same_request(file: File, body: FileCreate) -> bool:
    return (file.filename, file.content_type, file.size) == (body.filename, body.content_type, body.size)


def _human(size: int) -> str:
    for unit, factor in (("GiB", 1024**3), ("MiB", MIB), ("KiB", 1024)):
        if size >= factor:
            return f"{size / factor:.1f} {unit}"
    return f"{size} bytes"


async def create(
    uow: UnitOfWork, platform: Platform, user: User, body: FileCreate, idempotency_key: str | None
) -> tuple[File, UploadPlan | None, bool]:
    """Announce an upload: (file, where to send the bytes, created). A retry with the same key returns the first."""
    announced, created = await _announce(uow, platform, user, [body], None if idempotency_key is None
                                         else [idempotency_key])  # fmt: skip
    ((file, plan),) = announced
    return file, plan, created


async def create_batch(
    uow: UnitOfWork, platform: Platform, user: User, bodies: Sequence[FileCreate], idempotency_key: str | None
) -> tuple[list[tuple[File, UploadPlan | None]], bool]:
    """Announce several uploads at once, all or none: one quota check for their total. A retry with the same key
    returns the files announced first (each file keeps `<key>#<index>`, a form no single announcement can use)."""
    keys = None if idempotency_key is None else [f"{idempotency_key}#{index}" for index in range(len(bodies))]
    return await _announce(uow, platform, user, bodies, keys)


async def _announce(
    uow: UnitOfWork, platform: Platform, user: User, bodies: Sequence[FileCreate], keys: Sequence[str] | None
) -> tuple[list[tuple[File, UploadPlan | None]], bool]:
    storage = require_storage(platform)
    if keys is not None and (replayed := await _replayed(uow, platform, storage, user, bodies, keys)) is not None:
        return replayed, False
    settings = platform.settings
    for body in bodies:
        if body.size > settings.storage_max_upload_bytes:
            named = f" ({body.filename} is {_human(body.size)})" if len(bodies) > 1 else ""
            raise PayloadTooLarge(f"files are limited to {_human(settings.storage_max_upload_bytes)}{named}")
    await repository.lock_quota(uow.session)
    used, _ = await repository.usage(uow.session)
    quota, needed = settings.storage_quota_bytes, sum(body.size for body in bodies)
    if used + needed > quota:
        what = "this file needs" if len(bodies) == 1 else f"these {len(bodies)} files need"
        raise QuotaExceeded(
            f"the workspace's storage quota of {_human(quota)} is used up: {_human(max(quota - used, 0))} left, "
            f"{what} {_human(needed)}"
        )
    tokens = [secrets.token_urlsafe(24) for _ in bodies]
    now = utcnow()
    files = [
        File(owner_id=user.id, filename=body.filename, content_type=body.content_type, size=body.size,
             status=FileStatus.pending, storage_key=f"files/new/{token}",
             idempotency_key=None if keys is None else keys[index], created_at=now)
        for index, (body, token) in enumerate(zip(bodies, tokens, strict=True))
    ]  # fmt: skip
    if not await repository.insert_many(uow.session, files):  # a concurrent retry with the same key committed first
        assert keys is not None
        winner = await _replayed(uow, platform, storage, user, bodies, keys)
        assert winner is not None
        return winner, False
    for file, token in zip(files, tokens, strict=True):
        file.storage_key = f"files/{file.id}/{token}"  # never guessable from the id alone
    large = [file for file in files if is_multipart(platform, file.size)]
    upload_ids = await asyncio.gather(
        *(storage.start_multipart(file.storage_key, content_type=file.content_type) for file in large)
    )
    for file, upload_id in zip(large, upload_ids, strict=True):
        file.upload_id = upload_id
    await uow.session.flush()
    return [(file, upload_plan(platform, storage, file)) for file in files], True


async def _replayed(
    uow: UnitOfWork, platform: Platform, storage: Storage, user: User, bodies: Sequence[FileCreate],
    keys: Sequence[str],
) -> list[tuple[File, UploadPlan | None]] | None:  # fmt: skip
    """The files first announced with these keys, or None when the keys are new."""
    found = await repository.by_idempotency_keys(uow.session, user.id, keys)
    if not found:
        return None
    if len(found) != len(keys):
        raise Conflict("this idempotency key was already used for a different set of files")
    return [_replay(platform, storage, found[key], body) for key, body in zip(keys, bodies, strict=True)]


def _replay(platform: Platform, storage: Storage, file: File, body: FileCreate) -> tuple[File, UploadPlan | None]:
    if not _same_request(file, body):
        raise Conflict("this idempotency key was already used for a different file")
    if file.status is FileStatus.deleted:
        raise Conflict("the file announced with this idempotency key was deleted; use a new key")
    return file, upload_plan(platform, storage, file)


async def complete(uow: UnitOfWork, platform: Platform, user: User, file_id: int, parts: Sequence[PartETag]) -> File:
    """The owner says the bytes are uploaded: verification starts once this commits. Idempotent."""
    (file,) = await complete_batch(uow, platform, user, [(file_id, parts)])
    return file


async def complete_batch(
    uow: UnitOfWork, platform: Platform, user: User, items: Sequence[tuple[int, Sequence[PartETag]]]
) -> list[File]:
    """Complete several uploads, all or none: every check runs before the store assembles any multipart upload.
    Files decided already are returned as they are; verification of each pending one starts after the commit."""
    storage = require_storage(platform)
    batch = len(items) > 1
    rows = {file.id: file for file in await repository.get_many_for_update(uow.session, [i for i, _ in items])}
    files: list[File] = []
    for file_id, _ in items:
        file = rows.get(file_id)
        if file is None or file.owner_id != user.id or file.status is FileStatus.deleted:
            raise NotFound(f"no such file: {file_id}" if batch else "no such file")
        files.append(file)
    todo = [(file, parts) for file, (_, parts) in zip(files, items, strict=True)
            if file.status is FileStatus.pending and file.completed_at is None]  # fmt: skip
    for file, parts in todo:
        _check_parts(platform, file, parts, _label(file, batch))
    singles = [file for file, _ in todo if file.upload_id is None]
    found = await asyncio.gather(*(storage.stat(file.storage_key) for file in singles))
    if missing := [file for file, info in zip(singles, found, strict=True) if info is None]:
        which = f" (files {', '.join(str(file.id) for file in missing)})" if batch else ""
        raise Conflict(f"nothing was uploaded yet{which}: PUT the bytes to the upload URL, then complete")
    await asyncio.gather(*(_complete_multipart(storage, file, parts, _label(file, batch))
                           for file, parts in todo if file.upload_id is not None))  # fmt: skip
    now = utcnow()
    for file, _ in todo:
        file.completed_at = now
    verify = [file.id for file in files if file.status is FileStatus.pending]

    async def dispatch() -> None:
        if len(verify) == 1:
            await platform.tasks.send(VERIFY, verify[0])
        else:  # one message instead of one per file (about 1 ms of the api's CPU each)
            await platform.tasks.send(VERIFY_MANY, verify)

    if verify:
        uow.after_commit(dispatch)  # also on a repeat while still pending: verification is idempotent
    return files


def _label(file: File, batch: bool) -> str:
    return f"file {file.id}: " if batch else ""


def _check_parts(platform: Platform, file: File, parts: Sequence[PartETag], label: str) -> None:
    if file.upload_id is None:
        if parts:
            raise InvalidRequest(f"{label}this upload is a single PUT: complete it without parts")
        return
    expected = math.ceil(file.size / part_size(platform, file.size))
    if [part.number for part in parts] != list(range(1, expected + 1)):
        raise InvalidRequest(
            f"{label}a multipart upload is completed with the ETags of all its parts, 1 to {expected}, in order"
        )


async def _complete_multipart(storage: Storage, file: File, parts: Sequence[PartETag], label: str) -> None:
    assert file.upload_id is not None
    try:
        await storage.complete_multipart(
            file.storage_key, file.upload_id, [CompletedPart(part.number, part.etag) for part in parts]
        )
    except StorageError as error:
        # assembled already by an attempt whose transaction did not commit: the object is there, whole
        info = await storage.stat(file.storage_key)
        if info is None or info.size != file.size:
            raise Conflict(f"{label}the store refused to assemble the parts: {error}") from None


async def visible(uow: UnitOfWork, user: User, file_id: int) -> File:
    """The file, if the user owns it or sees a live message it is attached to; otherwise 404."""
    file = await repository.get(uow.session, file_id)
    if file is None or file.status is FileStatus.deleted:
        raise NotFound("no such file")
    if file.owner_id != user.id and not await repository.visible_through_messages(uow.session, file_id, user.id):
        raise NotFound("no such file")
    return file


async def download(uow: UnitOfWork, platform: Platform, user: User, file_id: int) -> PresignedRequest:
    """A short-lived GET of an available file's bytes."""
    storage = require_storage(platform)
    return _presigned_get(platform, storage, await visible(uow, user, file_id), "")


async def download_batch(
    uow: UnitOfWork, platform: Platform, user: User, file_ids: Sequence[int]
) -> list[PresignedRequest]:
    """Short-lived GETs of several available files (a message's attachments), in the order asked; all or none."""
    storage = require_storage(platform)
    rows = {file.id: file for file in await repository.get_many(uow.session, file_ids)}
    live = {file_id: file for file_id, file in rows.items() if file.status is not FileStatus.deleted}
    others = [file_id for file_id in file_ids if file_id not in live or live[file_id].owner_id != user.id]
    shown = await repository.visible_ids(uow.session, [i for i in others if i in live], user.id) if others else set()
    if hidden := [file_id for file_id in others if file_id not in shown]:
        raise NotFound(f"no such file: {hidden[0]}")
    return [_presigned_get(platform, storage, live[file_id], f"file {file_id}: ") for file_id in file_ids]


def _presigned_get(platform: Platform, storage: Storage, file: File, label: str) -> PresignedRequest:
    if file.status is FileStatus.pending:
        raise Conflict(f"{label}the file is not available yet: it is being uploaded or verified")
    if file.status is FileStatus.rejected:
        raise Conflict(f"{label}the file was rejected: {file.reject_reason}")
    return storage.presign_get(
        file.storage_key,
        expires=timedelta(seconds=platform.settings.storage_download_url_seconds),
        filename=file.filename,
        content_type=file.content_type,
        version_id=file.version_id,
    )


async def remove_objects(storage: Storage, file: File) -> None:
    """Delete whatever the store holds for the file (an unfinished multipart upload, every version). Idempotent."""
    if file.upload_id is not None and file.completed_at is None:
        await storage.abort_multipart(file.storage_key, file.upload_id)
    await storage.delete(file.storage_key)


async def delete(uow: UnitOfWork, platform: Platform, user: User, file_id: int) -> None:
    """Delete a file (its owner or an admin): its objects, its attachments; the row stays as `deleted`."""
    storage = require_storage(platform)
    file = await repository.get_for_update(uow.session, file_id)
    if file is None:
        raise NotFound("no such file")
    if file.owner_id != user.id and user.role is not Role.admin:
        await visible(uow, user, file_id)  # 404 unless they can see it
        raise Forbidden("only the owner or an admin can delete a file")
    if file.status is FileStatus.deleted:
        return  # deleting twice is harmless
    await remove_objects(storage, file)
    await repository.remove_attachments_of_file(uow.session, file.id)
    file.status, file.deleted_at = FileStatus.deleted, utcnow()
    await record(uow.session, "file.deleted", actor=user, target_type="file", target_id=file.id,
                 owner_id=file.owner_id, filename=file.filename, size=file.size)  # fmt: skip


async def usage(uow: UnitOfWork, platform: Platform) -> tuple[Usage, Usage]:
    """(what the database counts against the quota, what the store holds)."""
    storage = require_storage(platform)
    size, count = await repository.usage(uow.session)
    return Usage(bytes=size, objects=count), await storage.usage("files/")


# --- messaging integration: called by the messaging service and retention -------------------------------------


async def attach(uow: UnitOfWork, user: User, message_id: int, conversation_id: int, file_ids: Sequence[int]) -> None:
    """Attach the user's own available files to their new message (at most 10; repeats are ignored)."""
    wanted = list(dict.fromkeys(file_ids))
    if not wanted:
        return
    if len(wanted) > MAX_ATTACHMENTS:
        raise InvalidRequest(f"a message has at most {MAX_ATTACHMENTS} attachments")
    if await repository.conversation_of_message(uow.session, message_id) != conversation_id:
        raise InvalidRequest("the message is not in this conversation")
    files = {file.id: file for file in await repository.get_many(uow.session, wanted)}
    for file_id in wanted:
        file = files.get(file_id)
        if file is None or file.owner_id != user.id:
            raise InvalidRequest(f"file {file_id} is not one of your files")
        if file.status is not FileStatus.available:
            raise InvalidRequest(f"file {file_id} is {file.status.value}: only available files can be attached")
    present = await repository.attached_file_ids(uow.session, message_id)
    new = [file_id for file_id in wanted if file_id not in present]
    if len(present) + len(new) > MAX_ATTACHMENTS:
        raise InvalidRequest(f"a message has at most {MAX_ATTACHMENTS} attachments")
    await repository.add_attachments(uow.session, message_id, new, first_position=len(present))


async def attachments_for(session: AsyncSession, message_ids: Sequence[int]) -> dict[int, list[AttachmentOut]]:
    """The available attachments of each message (messages without any are left out), in attachment order."""
    result: dict[int, list[AttachmentOut]] = {}
    for message_id, file in await repository.attachments_for(session, message_ids):
        items = result.setdefault(message_id, [])
        items.append(AttachmentOut(file_id=file.id, filename=file.filename, content_type=file.content_type,
                                   size=file.size, position=len(items)))  # fmt: skip
    return result


async def purge_for_messages(
    uow: UnitOfWork, storage: Storage | None, message_ids: Sequence[int], *, include_replies: bool = False
) -> int:
    """Remove the attachments of these messages (being deleted or purged), and the files — objects and rows — no
    other message shows. Call it before the messages go, in the same unit of work; returns how many files went.

    `include_replies`: the messages are thread roots whose replies go too (retention). Without a store (files
    disabled, or a caller that has none) only the attachment links go: the file rows stay for the files purge,
    which removes object and row together, so no object is ever left without its row. The object deletes are
    idempotent, so a rolled-back transaction is repaired by running the same purge again.
    """
    ids = list(message_ids)
    if include_replies:
        ids += await repository.thread_replies(uow.session, ids)
    files = await repository.files_only_attached_to(uow.session, ids) if storage is not None else []
    if storage is not None:
        for file in files:
            await remove_objects(storage, file)
    await repository.remove_attachments_of_messages(uow.session, ids)
    return await repository.delete_rows(uow.session, [file.id for file in files])
