"""`TaskDispatcher` for the API: publishes tasks by name from a small thread pool.

Publishing is blocking kombu I/O (and retries while the broker is away), so it never runs on the API's
event loop. The caller's context is carried into the thread, so the Celery instrumentation's publish
span is a child of the request span and its W3C `traceparent` header continues the trace in the worker.
"""

from __future__ import annotations

import asyncio
import contextvars
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from celery import Celery  # type: ignore[import-untyped,unused-ignore]


class CeleryDispatcher:
    """Sends tasks to `celery` (an app from `create_celery`, so the task names are registered)."""

    def __init__(self, celery: Celery, *, max_threads: int = 4) -> None:
        self._celery = celery
        self._executor = ThreadPoolExecutor(max_workers=max_threads, thread_name_prefix="soa-task-publish")

    async def send(self, task_name: str, *args: Any) -> None:
        """Enqueue `task_name(*args)`; call only after the rows it refers to are committed."""
        context = contextvars.copy_context()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, context.run, self._publish, task_name, args)

    def _publish(self, task_name: str, args: tuple[Any, ...]) -> None:
        # the instrumentation looks the task up in the thread's current app to end its publish span
        self._celery.set_current()
        self._celery.send_task(task_name, args=list(args))

    def close(self) -> None:
        """Wait for publishes in flight and release the threads.

        The broker connections stay: kombu pools them per process and broker URL, shared by every app.
        """
        self._executor.shutdown(wait=True)
