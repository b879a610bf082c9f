"""Retiring a tenant: refused while protected; Retain keeps the data for recovery; Delete removes it."""

from __future__ import annotations

import time

from soa_operator import labels
from tests.operator.conftest import Cluster
from tests.support.operator_process import OperatorProcess, wait_until


def test_deletion_is_refused_while_protected_and_nothing_is_touched(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    cluster.provision(deletionProtection=True)
    objects_before = len(cluster.owned_objects())
    cluster.delete_tenant()
    wait_until(lambda: cluster.condition("Ready").get("reason") == "DeletionProtected", what="refusal reported")
    assert "deletionProtection is true" in cluster.condition("Ready")["message"]
    assert cluster.status()["phase"] == "Deleting"
    tenant = cluster.tenant()
    assert tenant is not None
    assert labels.FINALIZER in tenant["metadata"]["finalizers"]
    assert len(cluster.owned_objects()) == objects_before

    cluster.patch_spec(deletionProtection=False)
    wait_until(lambda: cluster.tenant() is None, what="tenant finalized once unprotected")


def test_retain_keeps_namespace_secrets_and_volumes_labelled_for_recovery(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    cluster.provision(deletionPolicy="Retain")
    secrets = cluster.secrets_data()
    claims = {c["metadata"]["name"] for c in cluster.namespaced("v1", "PersistentVolumeClaim")}
    cluster.delete_tenant()
    wait_until(lambda: cluster.tenant() is None, what="tenant finalized")
    wait_until(lambda: not cluster.namespaced("apps/v1", "Deployment"), what="workloads collected")

    namespace = cluster.kube.get("v1", "namespaces", "soa-moitt")
    assert namespace is not None
    assert namespace["metadata"]["labels"][labels.RETAINED_LABEL] == "true"
    assert not namespace["metadata"].get("ownerReferences")
    assert cluster.secrets_data() == secrets
    kept_claims = cluster.namespaced("v1", "PersistentVolumeClaim")
    assert {c["metadata"]["name"] for c in kept_claims} == claims
    for obj in cluster.namespaced("v1", "Secret") + kept_claims:
        assert obj["metadata"]["labels"][labels.RETAINED_LABEL] == "true"
        assert not obj["metadata"].get("ownerReferences")
    assert cluster.namespaced("networking.k8s.io/v1", "NetworkPolicy"), "retained data stays isolated"


def test_recreated_tenant_adopts_retained_data_with_identical_secrets(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    cluster.provision(deletionPolicy="Retain")
    secrets = cluster.secrets_data()
    cluster.delete_tenant()
    wait_until(lambda: cluster.tenant() is None, what="tenant finalized")

    cluster.create_tenant(deletionPolicy="Retain")
    tenant = cluster.wait_phase("Ready")
    assert cluster.secrets_data() == secrets
    namespace = cluster.kube.get("v1", "namespaces", "soa-moitt")
    assert namespace is not None
    assert labels.RETAINED_LABEL not in namespace["metadata"]["labels"]
    for secret in cluster.namespaced("v1", "Secret"):
        assert [o["uid"] for o in secret["metadata"]["ownerReferences"]] == [tenant["metadata"]["uid"]]


def test_delete_policy_removes_the_namespace_and_everything_in_it(cluster: Cluster, operator: OperatorProcess) -> None:
    cluster.provision(deletionPolicy="Delete")
    cluster.delete_tenant()
    wait_until(lambda: cluster.tenant() is None, what="tenant finalized")
    wait_until(lambda: cluster.kube.get("v1", "namespaces", "soa-moitt") is None, what="namespace deleted")
    assert cluster.namespaced("v1", "Secret") == []
    assert cluster.namespaced("v1", "PersistentVolumeClaim") == []


def test_held_deletion_of_a_never_provisioned_tenant_is_reported_once(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    cluster.create_tenant(deletionProtection=True)  # no kubelet: it never gets past Provisioning
    cluster.wait_phase("Provisioning")
    cluster.delete_tenant()
    wait_until(lambda: cluster.condition("Ready").get("reason") == "DeletionProtected", what="refusal reported")
    cluster.kube.reset_counts()
    time.sleep(2.0)  # several re-checks at the test's recheck interval
    status_writes = [w for w in cluster.operator_writes() if w[1].endswith("/status")]
    assert status_writes == []
    assert cluster.condition("Isolated").get("status") == "True", "other conditions are kept"
