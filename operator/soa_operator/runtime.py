"""State shared by the handlers of one operator process (kept in kopf's memo, not in globals)."""

from __future__ import annotations

import asyncio
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from soa_operator import telemetry
from soa_operator.api.model import Phase
from soa_operator.kube.client import KubeClient
from soa_operator.reconcile.tenant import TenantReconciler
from soa_operator.settings import OperatorSettings


@dataclass
class Runtime:
    settings: OperatorSettings
    client: KubeClient
    reconciler: TenantReconciler
    executor: ThreadPoolExecutor
    wakeups: dict[str, asyncio.Event] = field(default_factory=dict)
    phases: dict[str, str] = field(default_factory=dict)

    def wakeup(self, tenant: str) -> asyncio.Event:
        """The event a tenant's reconcile loop waits on; set it to reconcile now."""
        event = self.wakeups.get(tenant)
        if event is None:
            event = self.wakeups[tenant] = asyncio.Event()
        return event

    def poke(self, tenant: str) -> None:
        self.wakeup(tenant).set()

    def record_phase(self, tenant: str, phase: str) -> None:
        self.phases[tenant] = phase
        self._publish_phases()

    def forget(self, tenant: str) -> None:
        self.wakeups.pop(tenant, None)
        self.reconciler.renders.forget(tenant)
        self.reconciler.statuses.forget(tenant)
        self.phases.pop(tenant, None)
        self._publish_phases()

    def _publish_phases(self) -> None:
        counts = Counter(self.phases.values())
        for phase in Phase:
            telemetry.TENANTS_BY_PHASE.labels(phase=phase.value).set(counts.get(phase.value, 0))
