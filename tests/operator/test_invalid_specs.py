"""Specs that cannot become real end in Ready=False with a precise reason — once, not in a loop."""

from __future__ import annotations

import time

from tests.operator.conftest import Cluster
from tests.support.operator_process import RESYNC_SECONDS, OperatorProcess


def _status_writes(cluster: Cluster) -> int:
    return sum(1 for _, path in cluster.operator_writes() if path.endswith("/status"))


def test_custom_size_without_quotas_fails_with_reason_and_creates_nothing(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    cluster.create_tenant(size="custom")
    cluster.wait_phase("Failed")
    ready = cluster.condition("Ready")
    assert (ready["status"], ready["reason"]) == ("False", "QuotasRequired")
    assert "size: custom requires quotas.seats" in ready["message"]
    assert cluster.kube.get("v1", "namespaces", "soa-moitt") is None


def test_type_errors_the_schema_would_catch_are_reported_precisely(cluster: Cluster, operator: OperatorProcess) -> None:
    # The emulator does not enforce the CRD schema, like a server with validation turned off.
    cluster.create_tenant(size="huge", components={"messaging": {"maxMessageBytes": "lots"}})
    cluster.wait_phase("Failed")
    ready = cluster.condition("Ready")
    assert ready["reason"] == "InvalidSpec"
    assert "spec.size" in ready["message"]
    assert "spec.components.messaging.maxMessageBytes" in ready["message"]


def test_infeasible_change_leaves_running_tenant_untouched_and_is_written_once(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    cluster.provision()
    objects = {(o["kind"], o["metadata"]["name"], o["metadata"]["resourceVersion"]) for o in cluster.owned_objects()}
    time.sleep(RESYNC_SECONDS)
    cluster.kube.reset_counts()

    cluster.patch_spec(components={"storage": {"capacity": "500Gi"}})
    failed = cluster.wait_phase("Failed")
    assert cluster.condition("Ready")["reason"] == "StorageExceedsQuota"
    assert "capacity 500Gi exceeds the storage quota 200Gi" in cluster.condition("Ready")["message"]
    assert cluster.condition("MessagingReady")["status"] == "True", "other conditions are kept"
    assert failed["status"]["url"] == "https://moitt.soa.gov.pk"
    time.sleep(RESYNC_SECONDS * 3)
    assert _status_writes(cluster) == 1, "reported once, not rewritten on every wake-up"
    after = {(o["kind"], o["metadata"]["name"], o["metadata"]["resourceVersion"]) for o in cluster.owned_objects()}
    assert after == objects

    cluster.patch_spec(quotas={"storage": "1Ti"})
    cluster.wait_phase("Ready")
