"""Retention and upkeep of files: expired files go with their objects and rows, a file goes with the last message
showing it, abandoned uploads are removed, and nothing is left orphaned in the bucket or the database."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update

from soa_platform.admin.models import Setting
from soa_platform.audit.models import AuditEvent
from soa_platform.db import utcnow
from soa_platform.files import service
from soa_platform.files.models import File, FileStatus, MessageAttachment
from soa_platform.files.retention import purge_expired_files, sweep_uploads
from soa_platform.files.storage import CompletedPart, Storage, StorageError
from soa_platform.messaging.models import Message
from soa_platform.messaging.retention import purge_expired_messages
from tests.platform.files.conftest import (
    announce,
    channel_with,
    post_with_files,
    transfer,
    uploaded_and_verified,
    user_row,
)
from tests.platform.harness import Tenant, User

OLD = timedelta(days=40)


async def _age(tenant: Tenant, model: type[File] | type[Message], row_id: int, by: timedelta) -> None:
    async with tenant.platform.db.unit_of_work() as uow:
        await uow.session.execute(update(model).where(model.id == row_id).values(created_at=utcnow() - by))


async def _keep_days(tenant: Tenant, days: int) -> None:
    async with tenant.platform.db.unit_of_work() as uow:
        uow.session.add(Setting(key="retention", value={"days": days}))


async def _file_ids(tenant: Tenant) -> set[int]:
    async with tenant.platform.db.sessions() as session:
        return set((await session.scalars(select(File.id))).all())


async def _key(tenant: Tenant, file_id: int) -> str:
    async with tenant.platform.db.sessions() as session:
        file = await session.get(File, file_id)
    assert file is not None
    return file.storage_key


def _storage(tenant: Tenant) -> Storage:
    assert tenant.platform.storage is not None
    return tenant.platform.storage


async def _stored(tenant: Tenant) -> tuple[int, int]:
    usage = await _storage(tenant).usage("files/")
    return usage.bytes, usage.objects


async def _file(tenant: Tenant, user: User, name: str) -> dict[str, Any]:
    return await uploaded_and_verified(tenant, user, f"contents of {name}\n".encode(), filename=name)


async def test_an_expired_file_goes_with_its_object_and_its_row(moto_tenant: Tenant) -> None:
    tenant = moto_tenant
    owner = await tenant.user()
    old, young = await _file(tenant, owner, "old.txt"), await _file(tenant, owner, "young.txt")
    await _age(tenant, File, old["id"], OLD)
    old_key = await _key(tenant, old["id"])
    await _keep_days(tenant, 30)

    result = await purge_expired_files(tenant.platform.db, tenant.platform.storage, tenant.settings)

    assert (result.days, result.deleted) == (30, 1)
    assert await _file_ids(tenant) == {young["id"]}
    assert await _storage(tenant).stat(old_key) is None
    assert await _stored(tenant) == (young["size"], 1)
    async with tenant.platform.db.sessions() as session:
        (event,) = (await session.scalars(select(AuditEvent).where(AuditEvent.action == "files.purged"))).all()
    assert event.details["count"] == 1


async def test_an_old_file_stays_while_a_young_message_shows_it(moto_tenant: Tenant) -> None:
    tenant = moto_tenant
    owner, member = await tenant.user("amina"), await tenant.user("bilal")
    reused, forgotten = await _file(tenant, owner, "reused.txt"), await _file(tenant, owner, "forgotten.txt")
    channel = await channel_with(tenant, owner, member)
    old_message = await post_with_files(tenant, owner, channel, [reused["id"], forgotten["id"]], key="old")
    await post_with_files(tenant, owner, channel, [reused["id"]], key="new")
    for file_id in (reused["id"], forgotten["id"]):
        await _age(tenant, File, file_id, OLD)
    await _age(tenant, Message, old_message, OLD)
    await _keep_days(tenant, 30)

    result = await purge_expired_files(tenant.platform.db, tenant.platform.storage, tenant.settings)

    assert result.deleted == 1
    assert await _file_ids(tenant) == {reused["id"]}
    assert await _stored(tenant) == (reused["size"], 1)


async def test_a_file_shown_by_two_messages_goes_with_the_last_of_them(moto_tenant: Tenant) -> None:
    tenant = moto_tenant
    owner, member = await tenant.user("amina"), await tenant.user("bilal")
    shared = await _file(tenant, owner, "shared.txt")
    channel = await channel_with(tenant, owner, member)
    first = await post_with_files(tenant, owner, channel, [shared["id"]], key="one")
    second = await post_with_files(tenant, owner, channel, [shared["id"]], key="two")
    key = await _key(tenant, shared["id"])

    async with tenant.platform.db.unit_of_work() as uow:
        kept = await service.purge_for_messages(uow, tenant.platform.storage, [first])
    still_shown = (await tenant.client.get(f"/v1/files/{shared['id']}/download", headers=member.headers)).status_code
    async with tenant.platform.db.unit_of_work() as uow:
        gone = await service.purge_for_messages(uow, tenant.platform.storage, [second])

    assert (kept, still_shown, gone) == (0, 200, 1)
    assert await _file_ids(tenant) == set()
    assert await _storage(tenant).stat(key) is None
    async with tenant.platform.db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(MessageAttachment)) == 0


async def test_purging_thread_roots_takes_the_files_of_their_replies(moto_tenant: Tenant) -> None:
    tenant = moto_tenant
    owner = await tenant.user("amina")
    on_root, on_reply = await _file(tenant, owner, "root.txt"), await _file(tenant, owner, "reply.txt")
    channel = await channel_with(tenant, owner)
    root = await post_with_files(tenant, owner, channel, [on_root["id"]], key="root")
    reply = await tenant.client.post(
        f"/v1/conversations/{channel}/messages",
        json={"body": "and this", "idempotency_key": "reply", "thread_root_id": root},
        headers=owner.headers,
    )
    async with tenant.platform.db.unit_of_work() as uow:
        await service.attach(uow, await user_row(tenant, owner), reply.json()["id"], channel, [on_reply["id"]])

    async with tenant.platform.db.unit_of_work() as uow:
        removed = await service.purge_for_messages(uow, tenant.platform.storage, [root], include_replies=True)

    assert removed == 2
    assert await _stored(tenant) == (0, 0)


async def test_message_retention_then_file_retention_leave_nothing_behind(moto_tenant: Tenant) -> None:
    tenant = moto_tenant
    owner = await tenant.user("amina")
    attached = await _file(tenant, owner, "attached.txt")
    channel = await channel_with(tenant, owner)
    message_id = await post_with_files(tenant, owner, channel, [attached["id"]])
    await _age(tenant, Message, message_id, OLD)
    await _age(tenant, File, attached["id"], OLD)
    await _keep_days(tenant, 30)

    messages = await purge_expired_messages(tenant.platform.db, tenant.settings)
    files = await purge_expired_files(tenant.platform.db, tenant.platform.storage, tenant.settings)

    assert (messages.deleted, files.deleted) == (1, 1)
    assert await _file_ids(tenant) == set()
    assert await _stored(tenant) == (0, 0)


async def test_message_retention_removes_the_files_only_expired_messages_show(moto_tenant: Tenant) -> None:
    tenant = moto_tenant
    owner = await tenant.user("amina")
    attached = await _file(tenant, owner, "attached.txt")
    key = await _key(tenant, attached["id"])
    channel = await channel_with(tenant, owner)
    message_id = await post_with_files(tenant, owner, channel, [attached["id"]])
    await _age(tenant, Message, message_id, OLD)
    await _keep_days(tenant, 30)

    messages = await purge_expired_messages(tenant.platform.db, tenant.settings, storage=tenant.platform.storage)

    assert messages.deleted == 1
    assert await _file_ids(tenant) == set()
    assert await _storage(tenant).stat(key) is None
    assert await _stored(tenant) == (0, 0)


async def test_zero_days_keeps_every_file(moto_tenant: Tenant) -> None:
    tenant = moto_tenant
    owner = await tenant.user()
    old = await _file(tenant, owner, "old.txt")
    await _age(tenant, File, old["id"], timedelta(days=4000))
    await _keep_days(tenant, 0)

    result = await purge_expired_files(tenant.platform.db, tenant.platform.storage, tenant.settings)

    assert (result.days, result.deleted) == (0, 0)
    assert await _file_ids(tenant) == {old["id"]}


async def test_abandoned_uploads_are_removed_and_their_multipart_uploads_aborted(moto_tenant: Tenant) -> None:
    tenant = moto_tenant
    owner = await tenant.user()
    settings = tenant.platform.settings
    tenant.platform.settings = settings.model_copy(update={"storage_multipart_part_mib": 5})
    try:
        multipart = (await announce(tenant, owner, "big.bin", "application/octet-stream", 6 * 1024 * 1024)).json()
    finally:
        tenant.platform.settings = settings
    single = (await announce(tenant, owner, "a.txt", "text/plain", 5)).json()
    await transfer(tenant, single["upload"]["request"], b"hello")  # uploaded, never completed
    fresh = (await announce(tenant, owner, "b.txt", "text/plain", 5)).json()
    for file in (multipart, single):
        await _age(tenant, File, file["id"], timedelta(hours=25))
    part = await transfer(tenant, multipart["upload"]["parts"][0], b"x" * 5 * 1024 * 1024)

    result = await sweep_uploads(tenant.platform.db, tenant.platform.storage, tenant.settings)

    assert (result.abandoned, result.resend) == (2, [])
    async with tenant.platform.db.sessions() as session:
        statuses = dict((await session.execute(select(File.id, File.status))).tuples().all())
    assert statuses == {multipart["id"]: FileStatus.deleted, single["id"]: FileStatus.deleted,
                        fresh["id"]: FileStatus.pending}  # fmt: skip
    assert await _stored(tenant) == (0, 0)
    with pytest.raises(StorageError):  # the store forgot the upload: its parts cannot be assembled any more
        await _storage(tenant).complete_multipart(
            await _key(tenant, multipart["id"]), multipart["upload"]["upload_id"],
            [CompletedPart(1, part.headers["ETag"])],
        )  # fmt: skip
