"""Adopt what a Retained deletion left behind when a SOATenant of the same name comes back.

The namespace, its Secrets, PVCs and guard rails carry the ``retained`` label and no owner. The
new SOATenant takes them over: recovery labels are removed and the Secrets — which are never
regenerated — get the new owner reference. Everything else is re-applied by the normal
reconcile, because the owner uid in each desired object changed its hash.
"""

from __future__ import annotations

from typing import Any

from soa_operator import labels
from soa_operator.kube.client import KubeClient
from soa_operator.reconcile.deletion import RETAINED_KINDS
from soa_operator.reconcile.kinds import NAMESPACE, SECRET
from soa_operator.reconcile.observe import Observed

_FORGET_RETENTION: dict[str, Any] = {
    "labels": {labels.RETAINED_LABEL: None},
    "annotations": {labels.RETAINED_FROM_ANNOTATION: None},
}


def is_retained(obj: dict[str, Any] | None) -> bool:
    return bool(obj) and (obj or {}).get("metadata", {}).get("labels", {}).get(labels.RETAINED_LABEL) == "true"


def adopt_retained(client: KubeClient, tenant: str, uid: str | None, observed: Observed) -> list[str]:
    """Take over a retained namespace's objects; returns what was adopted (empty normally)."""
    if not uid or not is_retained(observed.namespace):
        return []
    namespace = labels.tenant_namespace(tenant)
    owner = {"apiVersion": labels.API_VERSION, "kind": labels.KIND, "name": tenant, "uid": uid, "controller": True}
    adopted = []
    for kind in RETAINED_KINDS:
        for obj in client.list(kind.api_version, kind.kind, namespace=namespace):
            if not is_retained(obj):
                continue
            patch: dict[str, Any] = {"metadata": dict(_FORGET_RETENTION)}
            if kind == SECRET:
                patch["metadata"]["ownerReferences"] = [owner]
            client.merge_patch(kind.api_version, kind.kind, obj["metadata"]["name"], patch, namespace)
            adopted.append(f"{kind.kind}/{obj['metadata']['name']}")
    client.merge_patch(NAMESPACE.api_version, NAMESPACE.kind, namespace, {"metadata": dict(_FORGET_RETENTION)})
    adopted.append(f"Namespace/{namespace}")
    return adopted
