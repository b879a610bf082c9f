"""Celery tasks of the audit log."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import OperationalError

from soa_platform.audit.export import run_export
from soa_platform.worker.declare import task
from soa_platform.worker.runtime import runtime_for

EXPORT = "soa.audit.export"


@task(
    EXPORT,
    bind=True,
    # idempotent: a finished export is never written again
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError,),
    retry_backoff=5,
    retry_backoff_max=300,
    max_retries=3,
)
def export(self: Any, export_id: int) -> bool:
    """Write audit export `export_id` (all events up to now, NDJSON); no-op once it is done."""
    runtime = runtime_for(self.app)
    return runtime.run(run_export(runtime.db, export_id))
