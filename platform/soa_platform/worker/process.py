"""Entry points of `soa worker` and `soa beat` (the CLI calls these)."""

from __future__ import annotations

from soa_platform.settings import PlatformSettings
from soa_platform.telemetry import setup_tracing, shutdown_tracing
from soa_platform.worker.app import create_celery
from soa_platform.worker.settings import WorkerSettings


def run_worker(settings: PlatformSettings, worker_settings: WorkerSettings | None = None) -> int:
    """Run a Celery worker until it is stopped (SIGTERM: warm shutdown); returns its exit code.

    Tracing is set up per pool process (`worker_process_init`), not here: threads do not survive a fork.
    """
    worker_settings = worker_settings or WorkerSettings()
    app = create_celery(settings, worker_settings)
    worker = app.Worker(
        pool_cls=worker_settings.worker_pool,
        concurrency=1 if worker_settings.worker_pool == "solo" else worker_settings.worker_concurrency,
        loglevel="INFO",
        # no broadcast chatter between workers: they share nothing but the queue
        without_gossip=True,
        without_mingle=True,
        without_heartbeat=True,
    )
    worker.start()
    return int(worker.exitcode or 0)


def run_beat(settings: PlatformSettings, worker_settings: WorkerSettings | None = None) -> int:
    """Run the beat scheduler until it is stopped; it publishes the periodic tasks (run exactly one)."""
    worker_settings = worker_settings or WorkerSettings()
    app = create_celery(settings, worker_settings)
    setup_tracing("soa-beat", settings)
    try:
        app.Beat(loglevel="INFO").run()
    finally:
        shutdown_tracing()
    return 0
