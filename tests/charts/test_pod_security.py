"""Every pod of both charts is hardened: Pod Security "restricted" and the secure defaults."""

from __future__ import annotations

import pytest

from tests.charts.manifests import Manifest, containers, is_hook, pod_specs, restricted_violations

CHARTS = ["tenant_all_features", "operator_default"]


@pytest.fixture(params=CHARTS)
def rendered(request: pytest.FixtureRequest) -> list[Manifest]:
    objects: list[Manifest] = request.getfixturevalue(request.param)
    return objects


def test_every_pod_passes_pod_security_restricted(rendered: list[Manifest]) -> None:
    violations = {where: found for where, spec in pod_specs(rendered) if (found := restricted_violations(spec))}

    assert violations == {}


def test_no_pod_gets_a_service_account_token_automatically(rendered: list[Manifest]) -> None:
    for where, spec in pod_specs(rendered):
        assert spec["automountServiceAccountToken"] is False, where


def test_every_pod_runs_as_a_fixed_unprivileged_identity(rendered: list[Manifest]) -> None:
    for where, spec in pod_specs(rendered):
        ctx = spec["securityContext"]
        assert ctx["runAsNonRoot"] is True, where
        assert {ctx["runAsUser"], ctx["runAsGroup"], ctx["fsGroup"]} == {10001}, where


def test_every_container_has_a_read_only_root_filesystem(rendered: list[Manifest]) -> None:
    for where, spec in pod_specs(rendered):
        for c in containers(spec):
            assert c["securityContext"]["readOnlyRootFilesystem"] is True, f"{where} {c['name']}"


def test_every_writable_path_is_a_bounded_volume(rendered: list[Manifest]) -> None:
    for where, spec in pod_specs(rendered):
        for volume in spec.get("volumes", []):
            if "emptyDir" in volume:
                assert volume["emptyDir"].get("sizeLimit"), f"{where} {volume['name']}"


def test_every_container_requests_and_limits_cpu_and_memory(rendered: list[Manifest]) -> None:
    for where, spec in pod_specs(rendered):
        for c in containers(spec):
            for bound in ("requests", "limits"):
                assert set(c["resources"][bound]) == {"cpu", "memory"}, f"{where} {c['name']} {bound}"


def test_every_long_running_container_has_liveness_and_readiness_probes(rendered: list[Manifest]) -> None:
    for obj in rendered:
        if obj["kind"] not in ("Deployment", "StatefulSet"):
            continue
        for c in containers(obj["spec"]["template"]["spec"]):
            assert "livenessProbe" in c, f"{obj['metadata']['name']} {c['name']}"
            assert "readinessProbe" in c, f"{obj['metadata']['name']} {c['name']}"


def test_every_image_is_pinned_and_pulled_by_policy(rendered: list[Manifest]) -> None:
    for where, spec in pod_specs(rendered):
        for c in containers(spec):
            tag = c["image"].rsplit("/", 1)[-1].partition(":")[2]
            assert tag not in ("", "latest"), f"{where} {c['image']}"
            assert c["imagePullPolicy"] == "IfNotPresent", where


def test_run_once_pods_never_restart_in_place(tenant_all_features: list[Manifest]) -> None:
    for obj in tenant_all_features:
        if obj["kind"] == "Job" or is_hook(obj):
            spec = obj["spec"]["template"]["spec"] if obj["kind"] == "Job" else obj["spec"]
            assert spec["restartPolicy"] == "Never", obj["metadata"]["name"]
