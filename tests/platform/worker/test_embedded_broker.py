"""The embedded default (`soa up`): a prefork worker with beat on kombu's SQLAlchemy transport over SQLite."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from soa_platform.audit.models import AuditEvent, AuditExport
from soa_platform.db import Database
from soa_platform.identity.models import User
from soa_platform.migrate import upgrade
from soa_platform.worker import CeleryDispatcher, create_celery, healthcheck
from tests.platform.worker.conftest import WorkerEnv, eventually, worker_environment

RUN_WORKER = (
    "import sys; from soa_platform.settings import PlatformSettings; from soa_platform.worker import run_worker; "
    "sys.exit(run_worker(PlatformSettings(), concurrency=1, beat=True))"
)


async def _done(db: Database, export_id: int) -> AuditExport | None:
    async with db.sessions() as session:
        export = await session.get(AuditExport, export_id)
        return export if export is not None and export.status == "done" else None


async def test_an_embedded_worker_runs_tasks_and_beat(tmp_path: Path) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'soa.db'}"
    await asyncio.to_thread(upgrade, database_url)
    env = WorkerEnv(tmp_path, worker_environment(tmp_path, database_url, f"sqla+sqlite:///{tmp_path / 'broker.db'}"))
    db = Database(database_url)
    dispatcher = CeleryDispatcher(create_celery(env.settings))
    try:
        async with db.unit_of_work() as uow:
            admin = User(email="admin@alpha.gov.pk", display_name="Admin")
            uow.session.add(admin)
            await uow.session.flush()
            uow.session.add(AuditEvent(action="user.login", actor_id=admin.id))
            export = AuditExport(requested_by=admin.id)
            uow.session.add(export)
        env.start_worker([sys.executable, "-c", RUN_WORKER])

        await dispatcher.send("soa.audit.export", export.id)

        done = await eventually(lambda: _done(db, export.id), what="the export to be done")
        assert done.event_count == 1
        await eventually(lambda: _fresh_beat(env), what="the embedded beat's heartbeat")
    finally:
        dispatcher.close()
        await db.dispose()
        for process in env.started:
            process.kill()


async def _fresh_beat(env: WorkerEnv) -> bool:
    return healthcheck("beat", env.settings, max_age_seconds=5) == 0
