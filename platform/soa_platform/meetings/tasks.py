"""Celery tasks of meetings: the periodic room maintenance (idle close and recreation after a Janus restart)."""

from __future__ import annotations

import logging
from typing import Any

from soa_platform.db import Database
from soa_platform.meetings.janus import JanusController
from soa_platform.meetings.service import MaintenanceResult, maintain_rooms
from soa_platform.settings import PlatformSettings
from soa_platform.worker.declare import PERMANENT_ERRORS, TRANSIENT_ERRORS, task
from soa_platform.worker.runtime import runtime_for

log = logging.getLogger(__name__)

MAINTAIN_ROOMS = "soa.meetings.maintain_rooms"
# how often beat runs it: also how long, at most, a room stays missing after Janus restarts with nobody rejoining
MAINTAIN_EVERY_SECONDS = 30.0


async def run_maintenance(db: Database, settings: PlatformSettings) -> MaintenanceResult:
    """One pass over the live meetings with a controller of its own (a task has no long-lived Janus session)."""
    janus = JanusController.from_settings(settings)
    if janus is None:
        return MaintenanceResult()
    try:
        async with db.unit_of_work() as uow:
            return await maintain_rooms(uow, settings, janus)
    finally:
        await janus.close()


@task(
    MAINTAIN_ROOMS,
    bind=True,
    # idempotent: ensure_room is a no-op for a room that exists; closing an ended meeting does nothing
    acks_late=True,
    reject_on_worker_lost=True,
    expires=MAINTAIN_EVERY_SECONDS,
    autoretry_for=TRANSIENT_ERRORS,
    dont_autoretry_for=PERMANENT_ERRORS,
    max_retries=0,  # the next beat is the retry
)
def maintain(self: Any) -> dict[str, int]:
    """Close idle meetings and recreate rooms Janus lost; returns the counts."""
    runtime = runtime_for(self.app)
    result = runtime.run(run_maintenance(runtime.db, runtime.settings))
    if result.recreated or result.closed:
        log.info("meeting rooms: %d recreated, %d idle closed", result.recreated, result.closed)
    return {"recreated": result.recreated, "closed": result.closed, "unreachable": int(result.unreachable)}
