"""Converge live objects to the rendered ones: apply what changed, prune what is gone.

An object is written only when its desired-state hash differs from the hash annotation on the
live object, or when a hand edit drifted it away from what we applied; so a reconcile with
nothing to do writes nothing, whatever the server defaulted. An object the API server refuses
for good (422, 403…) is recorded and skipped, so one bad object never blocks the others.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from soa_operator import labels
from soa_operator.kube.client import KubeClient, KubeError, parse_quantity
from soa_operator.reconcile.drift import drifted, exact_patch, has_foreign_fields
from soa_operator.reconcile.kinds import CHART_KINDS, CREATE_ONLY, NAMESPACE, PVC, STATEFULSET, Kind, kind_of
from soa_operator.reconcile.observe import Observed


@dataclass
class ApplyResult:
    applied: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)  # "Kind/name" -> the API server's reason
    live: dict[tuple[Kind, str], dict[str, Any]] = field(default_factory=dict)


def _hash_of(obj: dict[str, Any] | None) -> str | None:
    if obj is None:
        return None
    annotations = obj.get("metadata", {}).get("annotations") or {}
    value = annotations.get(labels.DESIRED_HASH_ANNOTATION)
    return str(value) if value is not None else None


def _ref(obj: dict[str, Any]) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def needs_apply(kind: Kind, desired: dict[str, Any], live: dict[str, Any] | None) -> bool:
    if live is None:
        return True
    if kind in CREATE_ONLY:
        return False
    return _hash_of(live) != _hash_of(desired) or drifted(desired, live)


def apply_desired(client: KubeClient, desired: Iterable[dict[str, Any]], observed: Observed) -> ApplyResult:
    """Apply in order every desired object that changed; Jobs are only ever created."""
    result = ApplyResult(live=dict(observed.objects))
    for obj in desired:
        kind = kind_of(obj)
        name = obj["metadata"]["name"]
        live = observed.namespace if kind == NAMESPACE else observed.get(kind, name)
        if not needs_apply(kind, obj, live):
            continue
        try:
            if live is not None and has_foreign_fields(obj, live):
                patch = {"spec": exact_patch(obj.get("spec"), live.get("spec"))}
                client.merge_patch(kind.api_version, kind.kind, name, patch, obj["metadata"].get("namespace"))
            if kind == STATEFULSET and (live is None or _claims_changed(obj, live)):
                _grow_claims(client, obj)  # volumes kept from before (Retain, disabled component)
                if live is not None:
                    _recreate_orphaning_pods(client, obj)
            applied = client.apply(obj)
        except KubeError as exc:
            if exc.retryable:
                raise
            result.rejected[_ref(obj)] = str(exc)
            continue
        result.applied.append(_ref(obj))
        if kind == NAMESPACE:
            observed.namespace = applied
        else:
            result.live[(kind, name)] = applied
    return result


def _claims(sts: dict[str, Any]) -> dict[str, Decimal]:
    templates = (sts.get("spec") or {}).get("volumeClaimTemplates") or []
    return {
        t["metadata"]["name"]: parse_quantity(str(t["spec"]["resources"]["requests"]["storage"]))
        for t in templates
        if t.get("spec", {}).get("resources", {}).get("requests", {}).get("storage")
    }


def _claims_changed(desired: dict[str, Any], live: dict[str, Any]) -> bool:
    return _claims(desired) != _claims(live)


def _grow_claims(client: KubeClient, sts: dict[str, Any]) -> None:
    """Expand existing PVCs of a StatefulSet's claim templates that are smaller than desired.

    A StatefulSet's claim templates are immutable and its controller never resizes claims it
    already made, so growing storage means growing the PVCs themselves.
    """
    namespace, sts_name = sts["metadata"]["namespace"], sts["metadata"]["name"]
    wanted = _claims(sts)
    if not wanted:
        return
    for pvc in client.list(PVC.api_version, PVC.kind, namespace=namespace):
        for template, size in wanted.items():
            name = pvc["metadata"]["name"]
            current = (pvc.get("spec") or {}).get("resources", {}).get("requests", {}).get("storage")
            if name.startswith(f"{template}-{sts_name}-") and current and parse_quantity(str(current)) < size:
                patch = {"spec": {"resources": {"requests": {"storage": _storage_of(sts, template)}}}}
                client.merge_patch(PVC.api_version, PVC.kind, name, patch, namespace)


def _storage_of(sts: dict[str, Any], template: str) -> str:
    for t in sts["spec"]["volumeClaimTemplates"]:
        if t["metadata"]["name"] == template:
            return str(t["spec"]["resources"]["requests"]["storage"])
    raise KeyError(template)


def _recreate_orphaning_pods(client: KubeClient, sts: dict[str, Any]) -> None:
    """Delete the StatefulSet but not its pods (they keep serving); the apply that follows
    recreates it with the new claim templates and adopts those pods."""
    meta = sts["metadata"]
    client.delete(STATEFULSET.api_version, STATEFULSET.kind, meta["name"], meta["namespace"], propagation="Orphan")


def prune_undesired(
    client: KubeClient, desired: Iterable[dict[str, Any]], observed: Observed, result: ApplyResult
) -> None:
    """Delete owned chart objects that the chart no longer renders (never Secrets or PVCs)."""
    wanted = {(kind_of(obj), obj["metadata"]["name"]) for obj in desired}
    for (kind, name), obj in list(observed.objects.items()):
        if kind not in CHART_KINDS or (kind, name) in wanted:
            continue
        if obj.get("metadata", {}).get("deletionTimestamp"):
            continue
        client.delete(kind.api_version, kind.kind, name, obj["metadata"].get("namespace"))
        result.pruned.append(f"{kind.kind}/{name}")
        result.live.pop((kind, name), None)
