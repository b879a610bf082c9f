"""What one worker process holds for its tasks: an asyncio loop in its own thread and a Database.

Tasks are synchronous Celery functions; `run(coro)` executes a coroutine on the process's loop, so tasks
reuse the async repositories and one connection pool per process. Built in `worker_process_init` (sent
by the prefork children and by `--pool=solo`), or on first use (e.g. `--pool=threads`); never in a
prefork parent, whose threads would not survive the fork.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import logging
import os
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

import httpx
from celery import current_app, signals  # type: ignore[import-untyped,unused-ignore]

from soa_platform.db import Database
from soa_platform.settings import PlatformSettings
from soa_platform.telemetry import instrument_engine, setup_tracing, shutdown_tracing

log = logging.getLogger(__name__)

T = TypeVar("T")
SERVICE_NAME = "soa-worker"
BEAT_SERVICE_NAME = "soa-beat"


class TaskRuntime:
    """One process's event loop thread, database and HTTP client."""

    def __init__(self, settings: PlatformSettings) -> None:
        self.pid = os.getpid()
        self.settings = settings
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="soa-task-loop", daemon=True)
        self._thread.start()
        self.db = Database(settings.sqlalchemy_url, pool_size=settings.database_pool_size)
        instrument_engine(self.db.engine)
        self.http = httpx.AsyncClient(timeout=settings.webhook_timeout_seconds, follow_redirects=False)
        logging.getLogger("httpx").setLevel(logging.WARNING)  # its INFO line per request shows the webhook URL

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the loop and wait for it, in the caller's context (so spans nest under the task's)."""
        context = contextvars.copy_context()
        result: concurrent.futures.Future[T] = concurrent.futures.Future()
        started = threading.Event()
        holder: list[asyncio.Task[T]] = []

        def start() -> None:
            task = self._loop.create_task(coro, context=context)
            holder.append(task)
            started.set()
            task.add_done_callback(lambda done: _copy_outcome(done, result))

        self._loop.call_soon_threadsafe(start)
        try:
            return result.result()
        except BaseException:
            # e.g. a soft time limit interrupting the wait: don't leave the coroutine running alone
            if started.wait(1) and not holder[0].done():
                self._loop.call_soon_threadsafe(holder[0].cancel)
            raise

    def close(self) -> None:
        if self._loop.is_closed():
            return
        try:
            asyncio.run_coroutine_threadsafe(self._aclose(), self._loop).result(10)
        except Exception:
            log.exception("closing the task runtime failed")
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _aclose(self) -> None:
        await self.http.aclose()
        await self.db.dispose()


def _copy_outcome(task: asyncio.Task[T], result: concurrent.futures.Future[T]) -> None:
    if task.cancelled():
        result.cancel()
    elif (error := task.exception()) is not None:
        result.set_exception(error)
    else:
        result.set_result(task.result())


_lock = threading.Lock()
_runtime: TaskRuntime | None = None


def start_runtime(settings: PlatformSettings) -> TaskRuntime:
    """This process's runtime, with tracing set up (idempotent; a forked child builds its own)."""
    global _runtime
    with _lock:
        if _runtime is None or _runtime.pid != os.getpid():
            setup_tracing(SERVICE_NAME, settings)
            _runtime = TaskRuntime(settings)
        return _runtime


def runtime_for(app: Any) -> TaskRuntime:
    """The runtime of this process, built from `app`'s settings if there is none yet."""
    current = _runtime
    if current is not None and current.pid == os.getpid():
        return current
    from soa_platform.worker.app import app_settings

    return start_runtime(app_settings(app))


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` on this worker process's event loop and return its result."""
    return runtime_for(current_app).run(coro)


def stop_runtime() -> None:
    """Dispose of the database pool and flush the spans (at worker process shutdown)."""
    global _runtime
    with _lock:
        current, _runtime = _runtime, None
    if current is not None and current.pid == os.getpid():
        current.close()
        shutdown_tracing()


def connect_process_signals(app: Any) -> None:
    """Build the runtime when a worker process starts and close it when it stops; trace beat from its start."""

    def on_process_init(**_: Any) -> None:
        runtime_for(app)

    def on_process_shutdown(**_: Any) -> None:
        stop_runtime()

    def on_beat_init(**_: Any) -> None:
        from soa_platform.worker.app import app_settings

        setup_tracing(BEAT_SERVICE_NAME, app_settings(app))

    # weak receivers kept alive by the app: an app that is dropped (tests, a rebuilt api) leaves nothing behind
    app.soa_signal_receivers = (on_process_init, on_process_shutdown, on_beat_init)
    signals.worker_process_init.connect(on_process_init)
    signals.worker_process_shutdown.connect(on_process_shutdown)
    signals.worker_shutdown.connect(on_process_shutdown)  # --pool=solo: its one process is the main one
    signals.beat_init.connect(on_beat_init)
    signals.beat_embedded_init.connect(on_beat_init)  # `soa worker --beat`
