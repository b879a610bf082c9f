"""Celery tasks of the audit log."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from soa_platform.audit.export import run_export, stale_export_ids
from soa_platform.db import utcnow
from soa_platform.worker.declare import PERMANENT_ERRORS, TRANSIENT_ERRORS, task
from soa_platform.worker.runtime import runtime_for

log = logging.getLogger(__name__)

EXPORT = "soa.audit.export"
SWEEP_EXPORTS = "soa.audit.sweep_exports"


@task(
    EXPORT,
    bind=True,
    # idempotent: a finished export is never written again
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=TRANSIENT_ERRORS,
    dont_autoretry_for=PERMANENT_ERRORS,
    retry_backoff=5,
    retry_backoff_max=300,
    max_retries=3,
)
def export(self: Any, export_id: int) -> bool:
    """Write audit export `export_id` (all events up to now, NDJSON); no-op once it is done."""
    runtime = runtime_for(self.app)
    return runtime.run(run_export(runtime.db, export_id))


@task(SWEEP_EXPORTS, bind=True, acks_late=True, reject_on_worker_lost=True, expires=600)
def sweep_exports(self: Any) -> int:
    """Enqueue again the exports pending for longer than the sweep interval; returns how many."""
    runtime = runtime_for(self.app)
    age = timedelta(seconds=runtime.settings.audit_export_sweep_seconds)
    export_ids = runtime.run(stale_export_ids(runtime.db, requested_before=utcnow() - age))
    for export_id in export_ids:
        self.app.send_task(EXPORT, args=[export_id])
    if export_ids:
        log.info("audit export sweep re-enqueued %d exports", len(export_ids))
    return len(export_ids)
