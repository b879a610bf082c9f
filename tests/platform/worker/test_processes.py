"""The worker and beat processes keep their heartbeats fresh, and the Celery app is configured as STYLE.md asks."""

from __future__ import annotations

import time
from typing import Any

import pytest

from soa_platform.settings import PlatformSettings
from soa_platform.worker import create_celery, healthcheck
from tests.platform.worker.conftest import KEY, WorkerEnv
from tests.support.processes import wait_until

TASKS = (
    "soa.notifications.deliver",
    "soa.notifications.sweep",
    "soa.messaging.purge_expired",
    "soa.audit.export",
    "soa.files.verify",
    "soa.files.sweep_uploads",
    "soa.files.purge_expired",
)


def test_a_consuming_worker_keeps_its_heartbeat_fresh(worker_env: WorkerEnv) -> None:
    worker_env.start_worker()
    time.sleep(1.2)  # more than two heartbeat intervals

    assert healthcheck("worker", worker_env.settings, max_age_seconds=1) == 0


def test_beat_keeps_its_heartbeat_fresh(worker_env: WorkerEnv) -> None:
    beat = worker_env.start_beat()
    heartbeat = worker_env.tmp_path / "beat.heartbeat"
    wait_until(heartbeat.exists, 15, "the beat heartbeat", beat.exit_problem)

    assert healthcheck("beat", worker_env.settings, max_age_seconds=5) == 0
    assert list(worker_env.tmp_path.glob("beat-schedule*"))  # under SOA_BEAT_SCHEDULE_FILE, not the read-only root


def _app(broker_url: str = "redis://127.0.0.1:6379/0", **overrides: Any) -> Any:
    values: dict[str, Any] = {"environment": "test", "signing_key": KEY, "session_key": KEY, "broker_url": broker_url}
    settings = PlatformSettings(**values, **overrides)
    return create_celery(settings)


def test_the_app_speaks_json_only_and_reserves_one_task_at_a_time() -> None:
    conf = _app().conf

    assert (conf.task_serializer, conf.accept_content, conf.worker_prefetch_multiplier) == ("json", ["json"], 1)
    assert conf.task_ignore_result is True
    assert conf.task_acks_late is False  # only per task, for the idempotent ones


@pytest.mark.parametrize("name", TASKS)
def test_idempotent_tasks_are_acknowledged_late_and_requeued_when_their_worker_dies(name: str) -> None:
    task = _app().tasks[name]

    assert (task.acks_late, task.reject_on_worker_lost) == (True, True)


def test_periodic_tasks_expire_after_their_interval() -> None:
    schedule = _app().conf.beat_schedule

    assert {"outbox-sweep", "retention-purge", "audit-export-sweep", "files-sweep", "files-retention-purge"} <= set(
        schedule
    )
    for entry in schedule.values():
        assert entry["options"]["expires"] == entry["schedule"]
    assert schedule["outbox-sweep"]["schedule"] == 60
    assert schedule["retention-purge"]["schedule"] == 3600
    assert schedule["files-sweep"]["schedule"] == 60
    assert schedule["files-retention-purge"]["schedule"] == 3600


def test_redis_gets_the_redelivery_timings() -> None:
    app = _app(broker_visibility_timeout=30, broker_unacked_restore_interval=2, broker_unacked_restore_throttle=1)

    options = app.conf.broker_transport_options
    assert options == {"visibility_timeout": 30, "unacked_restore_interval": 2, "unacked_restore_throttle": 1}


def test_the_embedded_broker_polls_often_and_has_no_remote_control() -> None:
    app = _app("sqla+sqlite:////tmp/broker.db", broker_polling_interval=0.1)

    with app.connection_for_write() as connection:
        assert connection.transport.polling_interval == 0.1
        assert connection.transport.driver_type == "sql"  # kombu.transport.sqlalchemy
    assert app.conf.broker_transport_options == {}  # kombu would hand them to create_engine()
    assert app.conf.worker_enable_remote_control is False


def test_production_refuses_to_start_without_a_broker() -> None:
    settings = PlatformSettings(environment="test", signing_key=KEY, session_key=KEY)

    assert create_celery(settings).conf.broker_url == "memory://"  # api tests without a worker
    with pytest.raises(RuntimeError, match="no Celery broker"):
        create_celery(settings.model_copy(update={"environment": "production"}))
