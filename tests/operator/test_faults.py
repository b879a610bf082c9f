"""Faults of the API server and of the operator itself: it converges, duplicates nothing and
never regenerates a secret."""

from __future__ import annotations

from collections import Counter

from tests.operator.conftest import Cluster
from tests.support.operator_process import OperatorProcess, wait_until


def _object_identities(cluster: Cluster) -> Counter[tuple[str, str]]:
    return Counter((o["kind"], o["metadata"]["name"]) for o in cluster.owned_objects())


def _converges_to_ready(cluster: Cluster) -> None:
    cluster.provision()
    assert max(_object_identities(cluster).values()) == 1
    assert len(cluster.secrets_data()) == 4


def test_server_errors_on_workload_writes_are_retried(cluster: Cluster, operator: OperatorProcess) -> None:
    fault = cluster.kube.inject_fault("PATCH", "/deployments/", status=500, times=3)
    _converges_to_ready(cluster)
    assert fault.hits == 3, "the faults did hit the operator"


def test_conflicts_on_status_writes_are_retried(cluster: Cluster, operator: OperatorProcess) -> None:
    cluster.kube.inject_fault("PATCH", "/soatenants/moitt/status", status=409, times=2)
    _converges_to_ready(cluster)


def test_throttling_on_secret_creation_is_retried_without_duplicates(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    cluster.kube.inject_fault("POST", "/secrets", status=429, times=2, retry_after="1")
    _converges_to_ready(cluster)
    created = [r for r in cluster.kube.write_records() if r.method == "POST" and r.path.endswith("/secrets")]
    assert sum(1 for r in created if r.status == 201) == 4


def test_lost_responses_do_not_duplicate_objects(cluster: Cluster, operator: OperatorProcess) -> None:
    cluster.kube.inject_fault("POST", "/secrets", times=1, drop_response=True)
    cluster.kube.inject_fault("PATCH", "/statefulsets/", times=1, drop_response=True)
    _converges_to_ready(cluster)


def test_dropped_and_expired_watches_still_deliver_changes(cluster: Cluster, operator: OperatorProcess) -> None:
    cluster.provision()
    cluster.kube.expire_next_watch(times=2)
    assert cluster.kube.drop_watches(abort=True) > 0
    cluster.patch_spec(components={"messaging": {"maxMessageBytes": 4096}})

    def config_updated() -> bool:
        config = cluster.kube.get("v1", "configmaps", "soa-platform", "soa-moitt") or {}
        return "4096" in str(config.get("data"))

    wait_until(config_updated, what="configmap updated after watch loss")
    cluster.wait_phase("Ready")


def test_operator_killed_mid_provision_converges_with_identical_secrets(
    cluster: Cluster, operator_factory: type[OperatorProcess]
) -> None:
    first = operator_factory()
    cluster.create_tenant()
    wait_until(lambda: len(cluster.secrets_data()) == 4, what="secrets generated")
    wait_until(lambda: cluster.namespaced("apps/v1", "StatefulSet"), what="stores being created")
    secrets = cluster.secrets_data()
    first.kill()

    operator_factory()
    cluster.kube.kubelet.auto = True
    cluster.wait_phase("Ready")
    assert cluster.secrets_data() == secrets
    assert max(_object_identities(cluster).values()) == 1
    created = [r for r in cluster.kube.write_records() if r.method == "POST" and r.path.endswith("/secrets")]
    assert sum(1 for r in created if r.status == 201) == 4
