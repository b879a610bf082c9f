"""Converge live objects to the rendered ones: apply what changed, prune what is gone.

An object is written only when its desired-state hash differs from the hash annotation on the
live object, so a reconcile with nothing to do writes nothing, whatever the server defaulted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from soa_operator import labels
from soa_operator.kube.client import KubeClient
from soa_operator.reconcile.kinds import CHART_KINDS, CREATE_ONLY, NAMESPACE, Kind, kind_of
from soa_operator.reconcile.observe import Observed


@dataclass
class ApplyResult:
    applied: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    live: dict[tuple[Kind, str], dict[str, Any]] = field(default_factory=dict)


def _hash_of(obj: dict[str, Any] | None) -> str | None:
    if obj is None:
        return None
    annotations = obj.get("metadata", {}).get("annotations") or {}
    value = annotations.get(labels.DESIRED_HASH_ANNOTATION)
    return str(value) if value is not None else None


def _ref(obj: dict[str, Any]) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def apply_desired(client: KubeClient, desired: Iterable[dict[str, Any]], observed: Observed) -> ApplyResult:
    """Apply in order every desired object whose hash changed; jobs are only ever created."""
    result = ApplyResult(live=dict(observed.objects))
    for obj in desired:
        kind = kind_of(obj)
        name = obj["metadata"]["name"]
        live = observed.namespace if kind == NAMESPACE else observed.get(kind, name)
        if live is not None and (kind in CREATE_ONLY or _hash_of(live) == _hash_of(obj)):
            continue
        applied = client.apply(obj)
        result.applied.append(_ref(obj))
        if kind == NAMESPACE:
            observed.namespace = applied
        else:
            result.live[(kind, name)] = applied
    return result


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
