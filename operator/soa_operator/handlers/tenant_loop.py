"""One reconcile loop per SOATenant (a kopf daemon): reconciles now, on every wake-up, and on a
level-based resync timer. The loop serialises a tenant's reconciles, and the timer also ends
stalls after lost responses or conflicts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import kopf

from soa_operator import labels, telemetry
from soa_operator.runtime import Runtime

log = logging.getLogger("soa_operator.loop")


def _snapshot(body: kopf.Body) -> dict[str, Any]:
    return {"metadata": dict(body.metadata), "spec": dict(body.spec), "status": dict(body.status)}


def _record_phase(runtime: Runtime, name: str, phase: str) -> None:
    runtime.phases[name] = phase
    TENANTS = telemetry.TENANTS_BY_PHASE
    counts: dict[str, int] = {}
    for value in runtime.phases.values():
        counts[value] = counts.get(value, 0) + 1
    for known in ("Pending", "Provisioning", "Ready", "Degraded", "Suspended", "Upgrading", "Deleting", "Failed"):
        TENANTS.labels(phase=known).set(counts.get(known, 0))


@kopf.daemon(labels.GROUP, labels.VERSION, labels.PLURAL, cancellation_timeout=10.0)
async def tenant_loop(name: str, body: kopf.Body, stopped: kopf.DaemonStopped, memo: kopf.Memo, **_: Any) -> None:
    runtime: Runtime = memo.runtime
    wakeup = runtime.wakeup(name)
    loop = asyncio.get_running_loop()
    failures = 0
    while not stopped:
        wakeup.clear()
        started = time.monotonic()
        outcome = await loop.run_in_executor(runtime.executor, runtime.reconciler.reconcile, _snapshot(body))
        telemetry.RECONCILE_SECONDS.observe(time.monotonic() - started)
        _record_phase(runtime, name, outcome.phase.value)
        if outcome.applied or outcome.pruned or outcome.created_secrets:
            log.info(
                "reconciled %s",
                name,
                extra={
                    "tenant": name,
                    "phase": outcome.phase.value,
                    "applied": len(outcome.applied),
                    "pruned": len(outcome.pruned),
                    "secrets_created": len(outcome.created_secrets),
                },
            )
        if outcome.retry_after is not None:
            telemetry.RECONCILE_ERRORS.inc()
            failures += 1
            delay = min(outcome.retry_after * 2 ** min(failures - 1, 4), runtime.settings.resync_seconds)
        else:
            failures = 0
            delay = runtime.settings.resync_seconds
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
