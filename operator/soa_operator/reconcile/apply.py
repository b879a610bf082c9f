"""Converge live objects to the rendered ones: apply what changed, prune what is gone.

An object is written only when its desired-state hash differs from the hash annotation on the
live object, or when a hand edit drifted it away from what we applied; so a reconcile with
nothing to do writes nothing, whatever the server defaulted. An object the API server refuses
for good (422, 403…) is recorded and skipped, so one bad object never blocks the others.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from soa_operator import labels
from soa_operator.kube.client import KubeClient, KubeError
from soa_operator.reconcile.drift import drifted
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
            if kind == STATEFULSET and live is not None and _claims_changed(obj, live):
                _replace_statefulset(client, obj, live)
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


def _claims(sts: dict[str, Any]) -> dict[str, str]:
    templates = (sts.get("spec") or {}).get("volumeClaimTemplates") or []
    return {
        t["metadata"]["name"]: str(t["spec"]["resources"]["requests"]["storage"])
        for t in templates
        if t.get("spec", {}).get("resources", {}).get("requests", {}).get("storage")
    }


def _claims_changed(desired: dict[str, Any], live: dict[str, Any]) -> bool:
    return _claims(desired) != _claims(live)


def _replace_statefulset(client: KubeClient, desired: dict[str, Any], live: dict[str, Any]) -> None:
    """Grow a StatefulSet's volumes: its claim templates are immutable, its PVCs are not.

    Expand each existing PVC, then delete the StatefulSet orphaning its pods (they keep serving)
    so the apply that follows recreates it with the new templates and adopts those pods.
    """
    namespace = desired["metadata"]["namespace"]
    sts_name = desired["metadata"]["name"]
    for template, size in _claims(desired).items():
        prefix = f"{template}-{sts_name}-"
        for pvc in client.list(PVC.api_version, PVC.kind, namespace=namespace):
            if pvc["metadata"]["name"].startswith(prefix):
                patch = {"spec": {"resources": {"requests": {"storage": size}}}}
                client.merge_patch(PVC.api_version, PVC.kind, pvc["metadata"]["name"], patch, namespace)
    client.delete(STATEFULSET.api_version, STATEFULSET.kind, sts_name, namespace, propagation="Orphan")
    del live  # the old object is gone; the caller applies the desired one


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
