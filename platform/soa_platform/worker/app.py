"""The Celery application: JSON only, one task reserved at a time, no result backend.

`acks_late` is not global: only tasks proven idempotent set it (with `reject_on_worker_lost`) on their
declaration, so a killed worker's task is delivered again instead of lost.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from celery import Celery  # type: ignore[import-untyped,unused-ignore]

from soa_platform.settings import PlatformSettings

TASK_MODULES = (
    "soa_platform.notifications.tasks",
    "soa_platform.messaging.tasks",
    "soa_platform.audit.tasks",
    "soa_platform.files.tasks",
    "soa_platform.meetings.tasks",
)
SQLALCHEMY_BROKER_PREFIXES = ("sqla+", "sqlalchemy+")
SQLALCHEMY_TRANSPORT = "soa_platform.worker.sqla_broker:Transport"
MEMORY_BROKER = "memory://"
BEAT_SCHEDULER = "soa_platform.worker.heartbeat:HeartbeatScheduler"

log = logging.getLogger(__name__)


def broker_url(settings: PlatformSettings) -> str:
    """The Celery broker: SOA_BROKER_URL, else the platform's Redis; outside production, else in-process memory."""
    url = settings.broker_url or settings.effective_redis_url
    if url:
        return url
    if settings.environment == "production":
        raise RuntimeError("no Celery broker: set SOA_BROKER_URL or SOA_REDIS_URL (or SOA_REDIS_HOST)")
    # tests of the api alone: tasks are accepted and go nowhere (the outbox rows stay for a later sweep)
    log.warning("no Celery broker configured: tasks are published to process memory and never run")
    return MEMORY_BROKER


def is_sqlalchemy_broker(url: str) -> bool:
    return url.startswith(SQLALCHEMY_BROKER_PREFIXES)


def transport_options(url: str, settings: PlatformSettings) -> dict[str, Any]:
    """Options of kombu 5.7's Redis transport (names as in kombu/transport/redis.py); none for the others."""
    if url.startswith(("redis://", "rediss://", "redis+socket://", "sentinel://")):
        return {
            "visibility_timeout": settings.broker_visibility_timeout,
            "unacked_restore_interval": settings.broker_unacked_restore_interval,
            "unacked_restore_throttle": settings.broker_unacked_restore_throttle,
        }
    return {}


def beat_schedule(settings: PlatformSettings) -> dict[str, dict[str, Any]]:
    """The periodic tasks; each expires after its interval so a backlog never runs twice in a row."""
    sweep = settings.outbox_sweep_seconds
    purge = settings.retention_purge_seconds
    exports = settings.audit_export_sweep_seconds
    rooms = 30.0  # meeting rooms: idle close and recreation after a Janus restart
    return {
        "outbox-sweep": {"task": "soa.notifications.sweep", "schedule": sweep, "options": {"expires": sweep}},
        "retention-purge": {"task": "soa.messaging.purge_expired", "schedule": purge, "options": {"expires": purge}},
        "audit-export-sweep": {"task": "soa.audit.sweep_exports", "schedule": exports, "options": {"expires": exports}},
        # lost verifications come back as quickly as lost notifications; abandoned uploads go on the same pass
        "files-sweep": {"task": "soa.files.sweep_uploads", "schedule": sweep, "options": {"expires": sweep}},
        "files-retention-purge": {"task": "soa.files.purge_expired", "schedule": purge, "options": {"expires": purge}},
        "meeting-rooms": {"task": "soa.meetings.maintain_rooms", "schedule": rooms, "options": {"expires": rooms}},
    }


def create_celery(settings: PlatformSettings) -> Celery:
    """A configured Celery app with every task registered."""
    url = broker_url(settings)
    for module in TASK_MODULES:  # registers the shared tasks, also in processes that only publish
        importlib.import_module(module)
    kombu_url, transport = url, None
    if is_sqlalchemy_broker(url):
        from soa_platform.worker import sqla_broker

        sqla_broker.Transport.polling_interval = settings.broker_polling_interval
        # kombu prefers a `sqla+` prefix over `broker_transport`: name our transport and pass the bare database URL
        kombu_url, transport = url.split("+", 1)[1], SQLALCHEMY_TRANSPORT
    app = Celery(f"soa-{settings.tenant}")
    app.conf.update(
        broker_url=kombu_url,
        broker_transport=transport,
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        result_accept_content=["json"],
        event_serializer="json",
        task_ignore_result=True,
        worker_prefetch_multiplier=1,
        broker_transport_options=transport_options(url, settings),
        broker_connection_retry_on_startup=True,
        # with acks_late the broker redelivers after a lost connection anyway: don't finish a second copy
        worker_cancel_long_running_tasks_on_connection_loss=True,
        # the SQLAlchemy transport has no fanout exchange, which remote control needs
        worker_enable_remote_control=not is_sqlalchemy_broker(url),
        worker_send_task_events=False,
        enable_utc=True,
        timezone="UTC",
        include=list(TASK_MODULES),
        beat_schedule=beat_schedule(settings),
        beat_scheduler=BEAT_SCHEDULER,
        beat_schedule_filename=settings.beat_schedule_file,
        beat_max_loop_interval=settings.heartbeat_interval_seconds,
    )
    app.soa_settings = settings

    from soa_platform.worker import heartbeat, runtime

    app.steps["consumer"].add(heartbeat.HeartbeatFile)
    runtime.connect_process_signals(app)
    return app


def app_settings(app: Any) -> PlatformSettings:
    """The settings `create_celery` attached to `app` (read from the environment for a foreign app)."""
    settings = getattr(app, "soa_settings", None)
    if not isinstance(settings, PlatformSettings):
        settings = PlatformSettings()
    return settings
