"""Tuning of the Celery processes (env prefix `SOA_`, like PlatformSettings, so the fields can move there as-is).

The defaults suit production; tests set the broker timings low so a killed worker's task comes back in
seconds instead of minutes.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class WorkerSettings(BaseSettings):
    """Broker timings, heartbeats and the intervals of the periodic tasks."""

    model_config = SettingsConfigDict(env_prefix="SOA_", extra="ignore", frozen=True)

    # Redis transport: an unacknowledged task goes back to the queue once it is older than the visibility
    # timeout, checked every restore interval x throttle seconds. Keep the timeout above the longest task
    # and above any retry countdown, or the task runs twice (harmless for our idempotent tasks, but wasted).
    broker_visibility_timeout: float = Field(default=900.0, gt=0)
    broker_unacked_restore_interval: float = Field(default=10.0, gt=0)
    broker_unacked_restore_throttle: int = Field(default=1, ge=1)
    # Embedded SQLAlchemy broker (`sqla+sqlite://`): how often an idle worker polls the queue table.
    broker_polling_interval: float = Field(default=0.2, gt=0)

    worker_pool: Literal["prefork", "solo", "threads"] = "prefork"
    worker_concurrency: int = Field(default=2, ge=1)

    heartbeat_interval_seconds: float = Field(default=10.0, gt=0)
    heartbeat_max_age_seconds: float = Field(default=60.0, gt=0)  # also bounds a task's run time on --pool=solo
    beat_schedule_file: str = "/tmp/soa-beat-schedule"  # noqa: S108 - the root filesystem is read-only; /tmp is not

    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    outbox_sweep_seconds: float = Field(default=60.0, gt=0)
    outbox_retry_after_seconds: float = Field(default=30.0, gt=0)  # first re-enqueue; doubles per attempt
    outbox_retry_max_delay_seconds: float = Field(default=6 * 3600.0, gt=0)
    outbox_max_attempts: int = Field(default=20, ge=1)

    # an export still pending this long after its request was lost (e.g. by the embedded broker): enqueue it again
    audit_export_sweep_seconds: float = Field(default=600.0, gt=0)

    retention_purge_seconds: float = Field(default=3600.0, gt=0)
    retention_batch_size: int = Field(default=500, ge=1, le=10_000)
