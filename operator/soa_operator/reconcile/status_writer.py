"""Write a tenant's status only when it changed — and progress-only changes at a measured pace.

Two things would otherwise cost writes:
- kopf's view of a SOATenant can lag our own last status patch under load; comparing with
  what we wrote a moment ago as well stops us from re-sending the same status;
- while a tenant provisions, replica counts and messages change with every pod. Changes of
  phase, condition status or reason, generation, version or URL are written at once; changes
  of counts and messages alone are coalesced to at most one write per ``coalesce_seconds``,
  and the caller is told when to come back so the last one is never lost.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from soa_operator import labels
from soa_operator.kube.client import KubeClient
from soa_operator.reconcile.status import status_changed

# How long our own last write is trusted over a body that does not show it yet. At 1,000 tenants
# kopf's copy lagged by more than 30 s, and falling back to it re-stamped transition times; once
# the copy catches up the two are equal, so a long window costs nothing in normal operation.
_OWN_WRITE_TRUST_SECONDS = 600.0


@dataclass(frozen=True)
class StatusWrite:
    written: bool
    requeue_after: float | None = None


def _essentials(status: dict[str, Any]) -> tuple[Any, ...]:
    conditions = sorted((c.get("type"), c.get("status"), c.get("reason")) for c in status.get("conditions") or [])
    keys = ("phase", "observedGeneration", "version", "url", "namespace")
    return (*(status.get(k) for k in keys), tuple(conditions))


def significant_change(new: dict[str, Any], old: dict[str, Any]) -> bool:
    """A change someone waits for: phase, a condition's status or reason, generation, version, URL."""
    return _essentials(new) != _essentials(old)


class StatusWriter:
    def __init__(
        self, client: KubeClient, coalesce_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.client = client
        self.coalesce_seconds = coalesce_seconds
        self._clock = clock
        self._last: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def write(self, name: str, new: dict[str, Any], current: dict[str, Any]) -> StatusWrite:
        now = self._clock()
        with self._lock:
            last = self._last.get(name)
        if last is not None and now - last[0] > _OWN_WRITE_TRUST_SECONDS:
            last = None
        if not status_changed(new, current) or (last is not None and not status_changed(new, last[1])):
            return StatusWrite(written=False)
        baseline = last[1] if last is not None else current
        if last is not None and not significant_change(new, baseline):
            wait = self.coalesce_seconds - (now - last[0])
            if wait > 0:
                return StatusWrite(written=False, requeue_after=wait)
        self.client.merge_patch(labels.API_VERSION, labels.KIND, name, {"status": new}, subresource="status")
        with self._lock:
            self._last[name] = (now, new)
        return StatusWrite(written=True)

    def latest(self, name: str, current: dict[str, Any]) -> dict[str, Any]:
        """The freshest status we know of: our own recent write, or else the object's.

        Building the next status on it keeps condition transition times stable while the
        object kopf hands us still lags our last write."""
        with self._lock:
            last = self._last.get(name)
        if last is not None and self._clock() - last[0] <= _OWN_WRITE_TRUST_SECONDS:
            return last[1]
        return current

    def forget(self, name: str) -> None:
        with self._lock:
            self._last.pop(name, None)
