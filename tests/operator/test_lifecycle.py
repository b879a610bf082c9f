"""Suspend, resume and upgrade: data is kept, and workloads move only after a migration passes."""

from __future__ import annotations

from typing import Any

from tests.operator.conftest import WORKLOAD_KINDS, Cluster
from tests.support.operator_process import OperatorProcess, wait_until


def _replicas(cluster: Cluster) -> dict[str, int]:
    return {
        obj["metadata"]["name"]: obj["spec"]["replicas"]
        for api_version, kind in WORKLOAD_KINDS
        for obj in cluster.namespaced(api_version, kind)
    }


def _image_tags(cluster: Cluster) -> dict[str, str]:
    tags = {}
    for name in ("soa-api", "soa-worker", "soa-beat"):
        deployment: dict[str, Any] | None = cluster.kube.get("apps/v1", "deployments", name, "soa-moitt")
        assert deployment is not None, name
        tags[name] = deployment["spec"]["template"]["spec"]["containers"][0]["image"].rsplit(":", 1)[1]
    return tags


def test_suspend_scales_everything_to_zero_and_keeps_data(cluster: Cluster, operator: OperatorProcess) -> None:
    cluster.provision()
    running = _replicas(cluster)
    secrets = cluster.secrets_data()
    claims = {c["metadata"]["name"] for c in cluster.namespaced("v1", "PersistentVolumeClaim")}
    assert claims, "the stores' volumes exist"

    cluster.patch_spec(suspended=True)
    cluster.wait_phase("Suspended")
    assert set(_replicas(cluster).values()) == {0}
    assert cluster.secrets_data() == secrets
    assert {c["metadata"]["name"] for c in cluster.namespaced("v1", "PersistentVolumeClaim")} == claims
    assert cluster.condition("Ready")["reason"] == "Suspended"

    cluster.patch_spec(suspended=False)
    cluster.wait_phase("Ready")
    assert _replicas(cluster) == running
    assert cluster.secrets_data() == secrets


def test_tenant_created_suspended_runs_no_migration_until_resumed(cluster: Cluster, operator: OperatorProcess) -> None:
    cluster.kube.kubelet.auto = True
    cluster.create_tenant(suspended=True)
    cluster.wait_phase("Suspended")
    assert cluster.namespaced("batch/v1", "Job") == []
    cluster.patch_spec(suspended=False)
    cluster.wait_phase("Ready")
    assert [j["metadata"]["name"] for j in cluster.namespaced("batch/v1", "Job")] == ["soa-migrate-0-1-0"]


def test_first_provisioning_starts_workloads_only_after_migration(cluster: Cluster, operator: OperatorProcess) -> None:
    cluster.create_tenant()
    wait_until(lambda: cluster.kube.get("batch/v1", "jobs", "soa-migrate-0-1-0", "soa-moitt"), what="migration job")
    cluster.wait_phase("Provisioning")
    cluster.kube.kubelet.mark_ready()
    assert cluster.kube.get("apps/v1", "deployments", "soa-api", "soa-moitt") is None
    cluster.kube.kubelet.finish_jobs(succeed=True)
    wait_until(lambda: cluster.kube.get("apps/v1", "deployments", "soa-api", "soa-moitt"), what="api after migration")
    cluster.kube.kubelet.auto = True
    cluster.wait_phase("Ready")


def test_failed_migration_keeps_old_version_then_a_passing_one_rolls_out(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    cluster.provision()
    cluster.kube.kubelet.failing_jobs.add("soa-migrate-0-2-0")

    cluster.patch_spec(version="0.2.0")
    failed = cluster.wait_phase("Degraded")
    upgrade = cluster.condition("UpgradeSucceeded")
    assert (upgrade["status"], upgrade["reason"]) == ("False", "MigrationFailed")
    assert "soa-migrate-0-2-0 failed; workloads stay on 0.1.0" in upgrade["message"]
    assert failed["status"]["version"] == "0.1.0"
    assert set(_image_tags(cluster).values()) == {"0.1.0"}

    cluster.patch_spec(version="0.2.1")
    ready = cluster.wait_phase("Ready")
    assert ready["status"]["version"] == "0.2.1"
    assert set(_image_tags(cluster).values()) == {"0.2.1"}
    assert cluster.condition("UpgradeSucceeded")["status"] == "True"
    assert [j["metadata"]["name"] for j in cluster.namespaced("batch/v1", "Job")] == ["soa-migrate-0-2-1"]


def test_upgrade_reports_upgrading_while_migration_runs(cluster: Cluster, operator: OperatorProcess) -> None:
    cluster.provision()
    cluster.kube.kubelet.stop()
    cluster.patch_spec(version="0.3.0")
    cluster.wait_phase("Upgrading")
    assert cluster.condition("UpgradeSucceeded")["reason"] == "MigrationRunning"
    assert set(_image_tags(cluster).values()) == {"0.1.0"}
    cluster.kube.kubelet.auto = True
    cluster.wait_phase("Ready")
    assert set(_image_tags(cluster).values()) == {"0.3.0"}


def test_downgrade_is_refused_and_reported(cluster: Cluster, operator: OperatorProcess) -> None:
    cluster.provision(version="0.2.0")
    cluster.patch_spec(version="0.1.0")
    cluster.wait_phase("Degraded")
    assert cluster.condition("Ready")["reason"] == "DowngradeRefused"
    assert set(_image_tags(cluster).values()) == {"0.2.0"}


def test_growing_storage_expands_volumes_and_keeps_the_store_running(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    cluster.provision()
    claims = {c["metadata"]["name"]: c for c in cluster.namespaced("v1", "PersistentVolumeClaim")}
    minio_claims = [n for n in claims if n.endswith("-soa-minio-0")]
    assert minio_claims
    uid = (cluster.kube.get("v1", "persistentvolumeclaims", minio_claims[0], "soa-moitt") or {})["metadata"]["uid"]

    cluster.patch_spec(components={"storage": {"capacity": "80Gi"}})

    def expanded() -> bool:
        claim = cluster.kube.get("v1", "persistentvolumeclaims", minio_claims[0], "soa-moitt") or {}
        return claim.get("spec", {}).get("resources", {}).get("requests", {}).get("storage") == "80Gi"

    wait_until(expanded, what="minio volume expanded to 80Gi")
    cluster.wait_phase("Ready")
    claim = cluster.kube.get("v1", "persistentvolumeclaims", minio_claims[0], "soa-moitt") or {}
    assert claim["metadata"]["uid"] == uid, "the same volume, grown — not a new one"
    sts = cluster.kube.get("apps/v1", "statefulsets", "soa-minio", "soa-moitt") or {}
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "80Gi"


def test_storage_reenabled_with_more_capacity_grows_the_kept_volume(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    cluster.provision()
    claim = next(c for c in cluster.namespaced("v1", "PersistentVolumeClaim") if "soa-minio" in c["metadata"]["name"])
    cluster.patch_spec(components={"storage": {"enabled": False}})
    wait_until(lambda: cluster.kube.get("apps/v1", "statefulsets", "soa-minio", "soa-moitt") is None, what="minio gone")
    cluster.patch_spec(components={"storage": {"enabled": True, "capacity": "100Gi"}})
    cluster.wait_phase("Ready")

    def grown() -> bool:
        live = cluster.kube.get("v1", "persistentvolumeclaims", claim["metadata"]["name"], "soa-moitt") or {}
        return live.get("spec", {}).get("resources", {}).get("requests", {}).get("storage") == "100Gi"

    wait_until(grown, what="kept volume grown to 100Gi")
