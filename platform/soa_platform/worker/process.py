"""Entry points of `soa worker`, `soa beat` and `soa healthcheck` (the CLI calls these)."""

from __future__ import annotations

from soa_platform.settings import PlatformSettings
from soa_platform.telemetry import shutdown_tracing
from soa_platform.worker.app import create_celery
from soa_platform.worker.heartbeat import healthcheck

__all__ = ["healthcheck", "run_beat", "run_worker"]


def run_worker(
    settings: PlatformSettings,
    *,
    concurrency: int | None = None,
    beat: bool = False,
) -> int:
    """Run a Celery worker until it is stopped (SIGTERM: warm shutdown); returns its exit code.

    `beat=True` also runs the scheduler in a child process (the embedded default: one worker, one beat).
    Tracing is set up per pool process (`worker_process_init`), not here: threads do not survive a fork.
    """
    app = create_celery(settings)
    pool = settings.worker_pool
    worker = app.Worker(
        pool_cls=pool,
        concurrency=1 if pool == "solo" else concurrency or settings.worker_concurrency,
        beat=beat,
        loglevel="INFO",
        # no broadcast chatter between workers: they share nothing but the queue
        without_gossip=True,
        without_mingle=True,
        without_heartbeat=True,
    )
    worker.start()
    return int(worker.exitcode or 0)


def run_beat(settings: PlatformSettings) -> int:
    """Run the beat scheduler until it is stopped; it publishes the periodic tasks (run exactly one)."""
    app = create_celery(settings)
    try:
        app.Beat(loglevel="INFO").run()  # tracing starts in `beat_init` (see runtime.connect_process_signals)
    finally:
        shutdown_tracing()
    return 0
