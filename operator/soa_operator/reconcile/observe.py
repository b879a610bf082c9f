"""Read what exists for a tenant: the namespace and every object carrying its labels."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from soa_operator import labels
from soa_operator.kube.client import KubeClient
from soa_operator.reconcile.kinds import CHART_KINDS, NAMESPACE, SECRET, Kind


@dataclass
class Observed:
    """Live objects of one tenant keyed by (kind, name)."""

    namespace_name: str
    namespace: dict[str, Any] | None
    objects: dict[tuple[Kind, str], dict[str, Any]] = field(default_factory=dict)
    secrets: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def secret_names(self) -> set[str]:
        return set(self.secrets)

    def get(self, kind: Kind, name: str) -> dict[str, Any] | None:
        return self.objects.get((kind, name))

    def of_kind(self, kind: Kind) -> list[dict[str, Any]]:
        return [obj for (k, _), obj in self.objects.items() if k == kind]


def observe_tenant(client: KubeClient, tenant: str) -> Observed:
    """List the tenant's owned objects (reads only: they never count as writes)."""
    ns_name = labels.tenant_namespace(tenant)
    observed = Observed(ns_name, client.get(NAMESPACE.api_version, NAMESPACE.kind, ns_name))
    if observed.namespace is None:
        return observed
    selector = labels.owned_selector(tenant)
    for kind in CHART_KINDS:
        for obj in client.list(kind.api_version, kind.kind, namespace=ns_name, label_selector=selector):
            observed.objects[(kind, obj["metadata"]["name"])] = obj
    for obj in client.list(SECRET.api_version, SECRET.kind, namespace=ns_name, label_selector=selector):
        observed.secrets[obj["metadata"]["name"]] = obj
    return observed
