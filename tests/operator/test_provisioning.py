"""Provisioning: one SOATenant becomes a complete, isolated, owned workspace — with few writes."""

from __future__ import annotations

import base64
import time

from soa_operator import labels
from tests.operator.conftest import Cluster
from tests.support.operator_process import RESYNC_SECONDS, OperatorProcess, wait_until

SECRET_KEYS = {
    "soa-database": {"username", "password"},
    "soa-objectstore": {"root-user", "root-password", "access-key", "secret-key"},
    "soa-app": {"signing-key", "session-key"},
    "soa-meetings": {"janus-admin-secret", "janus-api-secret", "turn-shared-secret"},
}


def test_tenant_provisions_to_ready_with_every_condition_true(cluster: Cluster, operator: OperatorProcess) -> None:
    tenant = cluster.provision()
    status = tenant["status"]
    assert status["namespace"] == "soa-moitt"
    assert status["url"] == "https://moitt.soa.gov.pk"
    assert status["version"] == "0.1.0"
    assert status["observedGeneration"] == tenant["metadata"]["generation"]
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions == {
        t: "True" for t in ("Ready", "Isolated", "MessagingReady", "StorageReady", "MeetingsReady", "UpgradeSucceeded")
    }
    assert status["components"]["messaging"]["ready"] == status["components"]["messaging"]["desired"] > 0


def test_namespace_enforces_restricted_pod_security(cluster: Cluster, operator: OperatorProcess) -> None:
    cluster.provision()
    ns = cluster.kube.get("v1", "namespaces", "soa-moitt")
    assert ns is not None
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_every_object_is_labelled_and_owned_by_its_tenant(cluster: Cluster, operator: OperatorProcess) -> None:
    tenant = cluster.provision()
    objects = cluster.owned_objects()
    assert len(objects) > 30
    for obj in objects:
        meta = obj["metadata"]
        where = f"{obj['kind']}/{meta['name']}"
        assert meta["labels"][labels.MANAGED_BY] == "soa-operator", where
        assert meta["labels"][labels.TENANT_LABEL] == "moitt", where
        owners = [(o["kind"], o["uid"]) for o in meta.get("ownerReferences") or []]
        assert owners == [("SOATenant", tenant["metadata"]["uid"])], where


def test_generated_secrets_hold_random_material_and_stay_out_of_status_and_logs(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    tenant = cluster.provision()
    secrets = cluster.secrets_data()
    assert {name: set(data) for name, data in secrets.items()} == SECRET_KEYS
    password = base64.b64decode(secrets["soa-database"]["password"]).decode()
    assert len(password) >= 32
    everything_public = str(tenant) + operator.log_text()
    for data in secrets.values():
        for key, value in data.items():
            if key in ("username", "root-user"):
                continue
            assert base64.b64decode(value).decode() not in everything_public, key


def test_provisioning_writes_each_object_once_plus_finalizer_and_three_status_patches(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    cluster.provision()
    time.sleep(RESYNC_SECONDS * 2)  # let any straggling reconcile finish
    writes = cluster.operator_writes()
    objects = len(cluster.owned_objects()) + 1  # + the Namespace
    status_patches = [w for w in writes if w[1].endswith("/status")]
    tenant_patches = [w for w in writes if w[1] == "/apis/soa.moitt.gov.pk/v1alpha1/soatenants/moitt"]
    object_writes = [w for w in writes if "/namespaces/soa-moitt" in w[1] or w[1].endswith("namespaces/soa-moitt")]
    assert len(object_writes) == objects, sorted(object_writes)
    assert len(tenant_patches) == 1, "only kopf's finalizer"
    assert len(status_patches) <= 3, "Provisioning, migrated, Ready: progress in between is coalesced"
    assert len(writes) == len(object_writes) + len(tenant_patches) + len(status_patches)


def test_idle_resync_makes_zero_writes(cluster: Cluster, operator: OperatorProcess) -> None:
    cluster.provision()
    time.sleep(RESYNC_SECONDS)
    cluster.kube.reset_counts()
    time.sleep(RESYNC_SECONDS * 4)  # at least three level-based resyncs
    assert cluster.operator_writes() == []
    reads = [r for r in cluster.kube.request_log() if r.method == "GET" and "/namespaces/soa-moitt" in r.path]
    assert reads, "the resyncs did run (they read the tenant's objects)"


def test_spec_change_writes_only_the_objects_it_changes(cluster: Cluster, operator: OperatorProcess) -> None:
    cluster.provision()
    time.sleep(RESYNC_SECONDS)
    cluster.kube.reset_counts()
    cluster.patch_spec(tracing={"sampleRatio": 0.5})
    wait_until(lambda: cluster.status().get("observedGeneration") == 2, what="generation 2 observed")
    cluster.wait_phase("Ready")
    written = {path.rsplit("/", 2)[-2] + "/" + path.rsplit("/", 1)[-1] for _, path in cluster.operator_writes()}
    assert "configmaps/soa-platform" in written
    assert not any(p.startswith(("networkpolicies/", "statefulsets/", "services/", "secrets")) for p in written), (
        written
    )
    assert len(written) < 10, written


def test_disabling_a_component_prunes_its_objects(cluster: Cluster, operator: OperatorProcess) -> None:
    cluster.provision()
    assert cluster.kube.get("apps/v1", "deployments", "soa-janus", "soa-moitt") is not None
    cluster.patch_spec(components={"meetings": {"enabled": False}})
    wait_until(
        lambda: cluster.kube.get("apps/v1", "deployments", "soa-janus", "soa-moitt") is None, what="janus pruned"
    )
    assert cluster.kube.get("apps/v1", "deployments", "soa-coturn", "soa-moitt") is None
    cluster.wait_phase("Ready")
    assert cluster.condition("MeetingsReady")["reason"] == "Disabled"


def test_hand_edited_network_policy_is_reverted(cluster: Cluster, operator: OperatorProcess) -> None:
    cluster.provision()
    policy = cluster.kube.get("networking.k8s.io/v1", "networkpolicies", "soa-default-deny", "soa-moitt")
    assert policy is not None
    original = policy["spec"]
    cluster.kube.patch(
        "networking.k8s.io/v1",
        "networkpolicies",
        "soa-default-deny",
        {"spec": {"policyTypes": ["Ingress"]}},
        "soa-moitt",
    )

    def restored() -> bool:
        live = cluster.kube.get("networking.k8s.io/v1", "networkpolicies", "soa-default-deny", "soa-moitt")
        return live is not None and live["spec"] == original

    wait_until(restored, what="default-deny restored to Ingress+Egress")


def test_extra_rule_added_to_default_deny_is_removed(cluster: Cluster, operator: OperatorProcess) -> None:
    cluster.provision()
    args = ("networking.k8s.io/v1", "networkpolicies", "soa-default-deny")
    cluster.kube.patch(*args, {"spec": {"ingress": [{}]}}, "soa-moitt")  # "allow everything in"
    wait_until(lambda: not (cluster.kube.get(*args, "soa-moitt") or {})["spec"].get("ingress"), what="rule removed")


def test_env_added_by_another_tool_does_not_cause_endless_reapplies(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    cluster.provision()
    api = cluster.kube.get("apps/v1", "deployments", "soa-api", "soa-moitt") or {}
    containers = api["spec"]["template"]["spec"]["containers"]
    containers[0]["env"] = [*containers[0].get("env", []), {"name": "DEBUG", "value": "1"}]
    cluster.kube.patch("apps/v1", "deployments", "soa-api", {"spec": api["spec"]}, "soa-moitt", patch_type="merge")
    time.sleep(RESYNC_SECONDS * 2)
    cluster.kube.reset_counts()
    time.sleep(RESYNC_SECONDS * 3)
    assert cluster.operator_writes() == []
