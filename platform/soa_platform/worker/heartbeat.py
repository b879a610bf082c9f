"""Liveness of `soa worker` and `soa beat` through heartbeat files, and the probe that reads them.

The worker touches its file from the consumer's timer once it consumes (so a worker that lost its
broker, or a solo-pool worker stuck in one task, goes stale); beat touches its file on every tick
(at most `heartbeat_interval_seconds` apart, the beat's max loop interval).
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any, Literal

from celery import bootsteps  # type: ignore[import-untyped,unused-ignore]
from celery.beat import PersistentScheduler  # type: ignore[import-untyped,unused-ignore]

from soa_platform.settings import PlatformSettings
from soa_platform.worker.app import app_settings

log = logging.getLogger(__name__)

ProcessKind = Literal["worker", "beat"]


def touch(path: str) -> None:
    """Set the heartbeat file's mtime to now (creating it and its directory)."""
    try:
        file = Path(path)
        file.parent.mkdir(parents=True, exist_ok=True)
        file.touch()
    except OSError as error:
        log.warning("cannot write heartbeat file %s: %s", path, error)


class HeartbeatFile(bootsteps.StartStopStep):  # type: ignore[misc]
    """Consumer bootstep: touch the worker heartbeat file every `heartbeat_interval_seconds`."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, consumer: Any, **kwargs: Any) -> None:
        super().__init__(consumer, **kwargs)
        self._timer_entry: Any = None

    def start(self, consumer: Any) -> None:
        settings = app_settings(consumer.app)
        path = settings.worker_heartbeat_file
        touch(path)
        self._timer_entry = consumer.timer.call_repeatedly(settings.heartbeat_interval_seconds, touch, (path,))

    def stop(self, consumer: Any) -> None:
        if self._timer_entry is not None:
            self._timer_entry.cancel()
            self._timer_entry = None

    def shutdown(self, consumer: Any) -> None:
        self.stop(consumer)


class HeartbeatScheduler(PersistentScheduler):  # type: ignore[misc]
    """Beat's scheduler (its schedule in the shelve file `beat_schedule_file`) touching the beat heartbeat."""

    def tick(self, *args: Any, **kwargs: Any) -> Any:
        touch(app_settings(self.app).beat_heartbeat_file)
        return super().tick(*args, **kwargs)


def healthcheck(kind: ProcessKind, settings: PlatformSettings, *, max_age_seconds: float | None = None) -> int:
    """Exit code of the `soa worker|beat` liveness probe: 0 if the heartbeat is fresh, else 1 and one line why."""
    if max_age_seconds is None:
        max_age_seconds = settings.heartbeat_max_age_seconds
    path = settings.worker_heartbeat_file if kind == "worker" else settings.beat_heartbeat_file
    try:
        age = time.time() - Path(path).stat().st_mtime
    except FileNotFoundError:
        print(f"unhealthy: no {kind} heartbeat file at {path}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"unhealthy: cannot read {kind} heartbeat file {path}: {error}", file=sys.stderr)
        return 1
    if age > max_age_seconds:
        print(
            f"unhealthy: {kind} heartbeat is {age:.0f}s old (limit {max_age_seconds:.0f}s) at {path}", file=sys.stderr
        )
        return 1
    print(f"ok: {kind} heartbeat {age:.1f}s old")
    return 0
