"""What deleting a SOATenant does to its data, run from the finalizer.

Retain keeps the namespace with its Secrets, PVCs and guard rails (network policies, quota),
detached from the SOATenant and labelled for recovery; the owner-reference garbage collector
then removes the workloads. A SOATenant created later with the same name adopts them again.
Delete removes the namespace and so everything in it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from soa_operator import labels
from soa_operator.kube.client import KubeClient
from soa_operator.reconcile.kinds import NAMESPACE, PVC, SECRET, Kind

# Kept under Retain: the data, its credentials, and what keeps the data isolated.
RETAINED_KINDS: tuple[Kind, ...] = (
    SECRET,
    PVC,
    Kind("networking.k8s.io/v1", "NetworkPolicy"),
    Kind("v1", "ResourceQuota"),
    Kind("v1", "LimitRange"),
)


class DeletionRefused(Exception):
    """deletionProtection is on: nothing was touched."""


@dataclass
class DeletionResult:
    policy: str
    retained: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)


def _retain_patch(tenant: str, uid: str) -> dict[str, Any]:
    return {
        "metadata": {
            "ownerReferences": None,
            "labels": {labels.RETAINED_LABEL: "true"},
            "annotations": {labels.RETAINED_FROM_ANNOTATION: f"{tenant}/{uid}"},
        }
    }


def finalize_tenant(client: KubeClient, name: str, uid: str, spec: dict[str, Any]) -> DeletionResult:
    """Carry out the deletion policy; raises DeletionRefused while protection is on."""
    if spec.get("deletionProtection", True):
        raise DeletionRefused(
            f"deletion of SOATenant {name} refused: spec.deletionProtection is true; "
            f"set it to false to proceed (deletionPolicy: {spec.get('deletionPolicy', 'Retain')})"
        )
    policy = str(spec.get("deletionPolicy", "Retain"))
    namespace = labels.tenant_namespace(name)
    result = DeletionResult(policy=policy)
    if policy == "Delete":
        if client.delete(NAMESPACE.api_version, NAMESPACE.kind, namespace):
            result.deleted.append(f"Namespace/{namespace}")
        return result
    if client.get(NAMESPACE.api_version, NAMESPACE.kind, namespace) is None:
        return result
    for kind in RETAINED_KINDS:
        for obj in client.list(kind.api_version, kind.kind, namespace=namespace):
            meta = obj["metadata"]
            if kind != PVC and (meta.get("labels") or {}).get(labels.TENANT_LABEL) != name:
                continue
            if (meta.get("labels") or {}).get(labels.RETAINED_LABEL) != "true" or meta.get("ownerReferences"):
                client.merge_patch(kind.api_version, kind.kind, meta["name"], _retain_patch(name, uid), namespace)
            result.retained.append(f"{kind.kind}/{meta['name']}")
    client.merge_patch(NAMESPACE.api_version, NAMESPACE.kind, namespace, _retain_patch(name, uid))
    result.retained.append(f"Namespace/{namespace}")
    return result
