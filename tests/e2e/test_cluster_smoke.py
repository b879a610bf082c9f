"""Smoke tier on a real cluster: the API server's own validation, and provisioning of the
isolation guard rails (the platform images are not needed for these)."""

from __future__ import annotations

import pytest

from soa_operator import labels
from soa_operator.kube.client import KubeClient, KubeError
from tests.e2e.conftest import PROVISION_TIMEOUT
from tests.support.operator_process import OperatorProcess, wait_until


def _tenant(name: str, **spec: object) -> dict[str, object]:
    body = {"displayName": "E2E", "deletionPolicy": "Delete", "deletionProtection": False, **spec}
    return {"apiVersion": labels.API_VERSION, "kind": labels.KIND, "metadata": {"name": name}, "spec": body}


def test_server_enforces_cel_rule_for_custom_size(real_cluster: KubeClient, tenant_name: str) -> None:
    with pytest.raises(KubeError, match="size: custom requires quotas") as refused:
        real_cluster.apply(_tenant(tenant_name, size="custom"))
    assert refused.value.status == 422


def test_server_applies_schema_defaults(real_cluster: KubeClient, tenant_name: str) -> None:
    created = real_cluster.apply(_tenant(tenant_name))
    assert created["spec"]["size"] == "small"
    assert created["spec"]["components"]["storage"]["capacity"] == "50Gi"


def test_operator_provisions_an_isolated_namespace(
    real_cluster: KubeClient, real_operator: OperatorProcess, tenant_name: str
) -> None:
    real_cluster.apply(_tenant(tenant_name))

    def isolated() -> bool:
        tenant = real_cluster.get(labels.API_VERSION, labels.KIND, tenant_name) or {}
        conditions = {c["type"]: c["status"] for c in (tenant.get("status") or {}).get("conditions") or []}
        return conditions.get("Isolated") == "True"

    wait_until(isolated, PROVISION_TIMEOUT, interval=1.0, what="Isolated=True")
    namespace = real_cluster.get("v1", "Namespace", labels.tenant_namespace(tenant_name)) or {}
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    policies = real_cluster.list("networking.k8s.io/v1", "NetworkPolicy", labels.tenant_namespace(tenant_name))
    assert any(p["metadata"]["name"] == "soa-default-deny" for p in policies)
