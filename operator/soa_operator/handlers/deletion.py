"""The finalizer: refuse deletion while protected, otherwise carry out the deletion policy."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from soa_operator import labels
from soa_operator.api.model import Phase
from soa_operator.reconcile.deletion import DeletionRefused, finalize_tenant
from soa_operator.reconcile.status import (
    Assessment,
    ConditionState,
    build_status,
    carried_conditions,
    status_changed,
)
from soa_operator.runtime import Runtime

log = logging.getLogger("soa_operator.deletion")


@kopf.on.delete(labels.GROUP, labels.VERSION, labels.PLURAL, retries=None, backoff=10)
def tenant_deleted(name: str, uid: str, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    runtime: Runtime = memo.runtime
    spec = dict(body.spec)
    status = dict(body.status)
    try:
        result = finalize_tenant(runtime.client, name, uid, spec)
    except DeletionRefused as exc:
        _report(
            runtime,
            name,
            status,
            body.metadata.get("generation"),
            ConditionState("False", "DeletionProtected", str(exc)),
        )
        raise kopf.TemporaryError(str(exc), delay=10) from None
    runtime.forget(name)
    log.info(
        "finalized %s",
        name,
        extra={
            "tenant": name,
            "policy": result.policy,
            "retained": len(result.retained),
            "deleted": len(result.deleted),
        },
    )


def _report(runtime: Runtime, name: str, current: dict[str, Any], generation: Any, ready: ConditionState) -> None:
    assessment = Assessment(
        phase=Phase.Deleting,
        conditions={**carried_conditions(current), "Ready": ready},
        components=current.get("components") or {},
        namespace=current.get("namespace"),
        url=current.get("url"),
        version=current.get("version"),
    )
    new = build_status(assessment, current, generation)
    if status_changed(new, current):
        runtime.client.merge_patch(labels.API_VERSION, labels.KIND, name, {"status": new}, subresource="status")
