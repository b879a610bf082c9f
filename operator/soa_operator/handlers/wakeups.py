"""Wake a tenant's loop when the tenant or one of its workloads changes (reads only)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from soa_operator import labels
from soa_operator.runtime import Runtime

_OWNED: Mapping[str, Any] = {
    labels.MANAGED_BY: labels.MANAGED_BY_VALUE,
    labels.TENANT_LABEL: kopf.PRESENT,
}


# Async on purpose: kopf runs sync handlers in worker threads, and asyncio.Event.set() is not
# thread-safe; an async handler also skips an executor hop on every watch event.
@kopf.on.event(labels.GROUP, labels.VERSION, labels.PLURAL)
async def tenant_changed(name: str, memo: kopf.Memo, **_: Any) -> None:
    runtime: Runtime = memo.runtime
    runtime.poke(name)


async def _child_changed(meta: kopf.Meta, memo: kopf.Memo, **_: Any) -> None:
    runtime: Runtime = memo.runtime
    tenant = meta.labels.get(labels.TENANT_LABEL)
    if tenant:
        runtime.poke(tenant)


kopf.on.event("apps", "v1", "deployments", labels=_OWNED)(_child_changed)
kopf.on.event("apps", "v1", "statefulsets", labels=_OWNED)(_child_changed)
kopf.on.event("batch", "v1", "jobs", labels=_OWNED)(_child_changed)
