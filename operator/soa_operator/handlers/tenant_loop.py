"""One reconcile loop per SOATenant (a kopf daemon): reconciles now, on every wake-up, and on a
level-based resync timer. The loop serialises a tenant's reconciles, and the timer also ends
stalls after lost responses or conflicts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from typing import Any

import kopf

from soa_operator import labels, telemetry
from soa_operator.reconcile.tenant import Outcome
from soa_operator.runtime import Runtime

log = logging.getLogger("soa_operator.loop")


def _snapshot(body: kopf.Body) -> dict[str, Any]:
    return {"metadata": dict(body.metadata), "spec": dict(body.spec), "status": dict(body.status)}


@kopf.daemon(labels.GROUP, labels.VERSION, labels.PLURAL, cancellation_timeout=10.0)
async def tenant_loop(name: str, body: kopf.Body, stopped: kopf.DaemonStopped, memo: kopf.Memo, **_: Any) -> None:
    runtime: Runtime = memo.runtime
    wakeup = runtime.wakeup(name)
    loop = asyncio.get_running_loop()
    failures = 0
    while not stopped:
        wakeup.clear()
        started = time.monotonic()
        try:
            outcome = await loop.run_in_executor(runtime.executor, runtime.reconciler.reconcile, _snapshot(body))
        except Exception:
            # A bug must not stop this tenant's loop (kopf would restart it only after a minute).
            log.exception("reconcile of %s failed unexpectedly", name, extra={"tenant": name})
            outcome = Outcome(phase=None, retry_after=runtime.settings.retry_seconds)
        telemetry.RECONCILE_SECONDS.observe(time.monotonic() - started)
        if outcome.phase is not None:  # None: the API failed us, the phase is unknown
            runtime.record_phase(name, outcome.phase.value)
        if outcome.applied or outcome.pruned or outcome.created_secrets or outcome.adopted:
            log.info(
                "reconciled %s",
                name,
                extra={
                    "tenant": name,
                    "phase": outcome.phase.value if outcome.phase else None,
                    "applied": len(outcome.applied),
                    "pruned": len(outcome.pruned),
                    "secrets_created": len(outcome.created_secrets),
                    "adopted": len(outcome.adopted),
                },
            )
        if outcome.retry_after is not None:
            telemetry.RECONCILE_ERRORS.inc()
            failures += 1
            delay = min(outcome.retry_after * 2 ** min(failures - 1, 4), runtime.settings.resync_seconds)
        else:
            failures = 0
            # ±10% jitter spreads a thousand tenants' resyncs instead of bunching them.
            delay = runtime.settings.resync_seconds * random.uniform(0.9, 1.1)  # noqa: S311
            if outcome.requeue_after is not None:
                delay = min(delay, outcome.requeue_after)
        await _sleep_until_woken(wakeup, stopped, delay)


async def _sleep_until_woken(wakeup: asyncio.Event, stopped: kopf.DaemonStopped, delay: float) -> None:
    waiter = asyncio.ensure_future(wakeup.wait())
    stopper = asyncio.ensure_future(stopped.wait(delay))
    try:
        await asyncio.wait({waiter, stopper}, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (waiter, stopper):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
