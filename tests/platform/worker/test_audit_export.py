"""An audit export holds every event up to its start as NDJSON, and running it again changes nothing."""

from __future__ import annotations

import json

from soa_platform.audit.export import run_export
from soa_platform.audit.models import AuditEvent, AuditExport
from soa_platform.db import Database
from soa_platform.identity.models import User
from tests.platform.worker.conftest import WorkerEnv


async def _export_with_events(db: Database, count: int) -> int:
    async with db.unit_of_work() as uow:
        admin = User(email="admin@alpha.gov.pk", display_name="Admin")
        uow.session.add(admin)
        await uow.session.flush()
        for number in range(count):
            uow.session.add(
                AuditEvent(action="user.login", actor_id=admin.id, actor_email=admin.email, details={"n": number})
            )
        export = AuditExport(requested_by=admin.id)
        uow.session.add(export)
        await uow.session.flush()
        return export.id


async def _export(db: Database, export_id: int) -> AuditExport:
    async with db.sessions() as session:
        export = await session.get(AuditExport, export_id)
        assert export is not None
        return export


async def test_the_export_is_ndjson_of_every_event(worker_env: WorkerEnv, db: Database) -> None:
    export_id = await _export_with_events(db, 3)

    assert await run_export(db, export_id) is True

    export = await _export(db, export_id)
    assert (export.status, export.event_count) == ("done", 3)
    assert export.finished_at is not None
    assert export.content is not None
    lines = [json.loads(line) for line in export.content.splitlines()]
    assert [line["details"] for line in lines] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert {line["action"] for line in lines} == {"user.login"}
    assert lines[0]["actor_email"] == "admin@alpha.gov.pk"
    assert lines == sorted(lines, key=lambda line: line["id"])


async def test_running_an_export_again_changes_nothing(worker_env: WorkerEnv, db: Database) -> None:
    export_id = await _export_with_events(db, 2)
    await run_export(db, export_id)
    before = await _export(db, export_id)
    async with db.unit_of_work() as uow:
        uow.session.add(AuditEvent(action="user.logout"))

    assert await run_export(db, export_id) is False

    after = await _export(db, export_id)
    assert (after.content, after.event_count, after.finished_at) == (before.content, 2, before.finished_at)


async def test_a_missing_export_is_skipped(worker_env: WorkerEnv, db: Database) -> None:
    assert await run_export(db, 424242) is False
