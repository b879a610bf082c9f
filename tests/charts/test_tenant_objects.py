"""What the tenant chart renders by default, and the metadata every object carries."""

from __future__ import annotations

from tests.charts.charts import RenderTenant
from tests.charts.manifests import (
    CLUSTER_SCOPED_KINDS,
    Manifest,
    find,
    is_hook,
    kind_names,
    of_kind,
    pod_specs,
)

NAMESPACE = "soa-example"

EXPECTED_OBJECTS = {
    ("Namespace", "soa-example"),
    ("ResourceQuota", "soa-quota"),
    ("LimitRange", "soa-limits"),
    ("NetworkPolicy", "soa-default-deny"),
    ("NetworkPolicy", "soa-allow-same-namespace"),
    ("NetworkPolicy", "soa-allow-dns"),
    ("NetworkPolicy", "soa-allow-observability-egress"),
    ("NetworkPolicy", "soa-allow-ingress-controller"),
    ("NetworkPolicy", "soa-allow-ingress-controller-to-minio"),
    ("NetworkPolicy", "soa-allow-ingress-controller-to-janus"),
    ("NetworkPolicy", "soa-allow-media-janus"),
    ("NetworkPolicy", "soa-allow-media-coturn"),
    ("ServiceAccount", "soa-platform"),
    ("ServiceAccount", "soa-postgres"),
    ("ServiceAccount", "soa-redis"),
    ("ServiceAccount", "soa-minio"),
    ("ServiceAccount", "soa-janus"),
    ("ServiceAccount", "soa-coturn"),
    ("ConfigMap", "soa-platform"),
    ("Deployment", "soa-api"),
    ("Service", "soa-api"),
    ("PodDisruptionBudget", "soa-api"),
    ("Deployment", "soa-worker"),
    ("Deployment", "soa-beat"),
    ("Job", "soa-migrate-0-1-0"),
    ("StatefulSet", "soa-postgres"),
    ("Service", "soa-postgres"),
    ("StatefulSet", "soa-redis"),
    ("Service", "soa-redis"),
    ("StatefulSet", "soa-minio"),
    ("Service", "soa-minio"),
    ("Deployment", "soa-janus"),
    ("Service", "soa-janus"),
    ("Deployment", "soa-coturn"),
    ("Service", "soa-coturn"),
    ("Ingress", "soa"),
    ("Pod", "soa-test-api-health"),
}


def test_default_render_is_the_expected_set_of_objects(tenant_default: list[Manifest]) -> None:
    assert kind_names(tenant_default) == EXPECTED_OBJECTS


def test_every_object_carries_the_ownership_labels(tenant_all_features: list[Manifest]) -> None:
    expected = {
        "app.kubernetes.io/managed-by": "soa-operator",
        "soa.moitt.gov.pk/tenant": "example",
        "app.kubernetes.io/part-of": "soa",
        "app.kubernetes.io/instance": "example",
    }
    for obj in tenant_all_features:
        labels = obj["metadata"]["labels"]
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        assert {k: labels.get(k) for k in expected} == expected, where
        assert labels.get("app.kubernetes.io/name"), where
        assert labels.get("app.kubernetes.io/component"), where


def test_pod_templates_carry_the_ownership_labels(tenant_all_features: list[Manifest]) -> None:
    for obj in tenant_all_features:
        if obj["kind"] in ("Deployment", "StatefulSet", "Job"):
            labels = obj["spec"]["template"]["metadata"]["labels"]
            assert labels["app.kubernetes.io/managed-by"] == "soa-operator", obj["metadata"]["name"]
            assert labels["soa.moitt.gov.pk/tenant"] == "example", obj["metadata"]["name"]


def test_namespaced_objects_name_the_tenant_namespace(tenant_all_features: list[Manifest]) -> None:
    for obj in tenant_all_features:
        if obj["kind"] in CLUSTER_SCOPED_KINDS:
            assert "namespace" not in obj["metadata"], obj["kind"]
        else:
            assert obj["metadata"].get("namespace") == NAMESPACE, f"{obj['kind']}/{obj['metadata']['name']}"


def test_objects_land_in_the_tenant_namespace_whatever_the_release_namespace(render_tenant: RenderTenant) -> None:
    objects = render_tenant({}, namespace="default")

    namespaces = {obj["metadata"].get("namespace") for obj in objects if obj["kind"] not in CLUSTER_SCOPED_KINDS}
    assert namespaces == {NAMESPACE}


def test_namespace_enforces_pod_security_restricted(tenant_default: list[Manifest]) -> None:
    labels = find(tenant_default, "Namespace", NAMESPACE)["metadata"]["labels"]

    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
        assert labels[f"pod-security.kubernetes.io/{mode}-version"] == "latest"


def test_workload_selectors_match_their_pod_templates(tenant_all_features: list[Manifest]) -> None:
    for obj in tenant_all_features:
        if obj["kind"] in ("Deployment", "StatefulSet"):
            selector = obj["spec"]["selector"]["matchLabels"]
            template_labels = obj["spec"]["template"]["metadata"]["labels"]
            assert selector.items() <= template_labels.items(), obj["metadata"]["name"]


def test_every_service_selects_a_rendered_pod_template(tenant_all_features: list[Manifest]) -> None:
    templates = [
        obj["spec"]["template"]["metadata"]["labels"]
        for obj in tenant_all_features
        if obj["kind"] in ("Deployment", "StatefulSet")
    ]
    for service in of_kind(tenant_all_features, "Service"):
        selector = service["spec"]["selector"]
        assert any(selector.items() <= t.items() for t in templates), service["metadata"]["name"]


def test_stateful_sets_retain_their_volumes(tenant_default: list[Manifest]) -> None:
    for sts in of_kind(tenant_default, "StatefulSet"):
        policy = sts["spec"]["persistentVolumeClaimRetentionPolicy"]
        assert policy == {"whenDeleted": "Retain", "whenScaled": "Retain"}, sts["metadata"]["name"]


def test_claims_are_not_labelled_as_operator_managed(tenant_default: list[Manifest]) -> None:
    # the StatefulSet controller makes them; a label-based prune must never consider them
    for sts in of_kind(tenant_default, "StatefulSet"):
        for claim in sts["spec"]["volumeClaimTemplates"]:
            assert "app.kubernetes.io/managed-by" not in claim["metadata"]["labels"]
            assert claim["metadata"]["labels"]["soa.moitt.gov.pk/tenant"] == "example"


def test_minio_volume_is_sized_by_storage_capacity(render_tenant: RenderTenant) -> None:
    objects = render_tenant({"components": {"storage": {"capacity": "75Gi"}}})

    claim = find(objects, "StatefulSet", "soa-minio")["spec"]["volumeClaimTemplates"][0]
    assert claim["spec"]["resources"]["requests"]["storage"] == "75Gi"


def test_each_workload_runs_under_its_own_service_account(tenant_default: list[Manifest]) -> None:
    accounts = {sa["metadata"]["name"] for sa in of_kind(tenant_default, "ServiceAccount")}
    for where, spec in pod_specs(tenant_default):
        assert spec["serviceAccountName"] in accounts, where
    for sa in of_kind(tenant_default, "ServiceAccount"):
        assert sa["automountServiceAccountToken"] is False


def test_chart_renders_no_secret(tenant_all_features: list[Manifest]) -> None:
    assert of_kind(tenant_all_features, "Secret") == []


def test_the_only_hook_is_the_api_health_test(tenant_default: list[Manifest]) -> None:
    hooks = [obj for obj in tenant_default if is_hook(obj)]

    assert [(h["kind"], h["metadata"]["name"]) for h in hooks] == [("Pod", "soa-test-api-health")]
    assert hooks[0]["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert hooks[0]["spec"]["containers"][0]["args"] == ["http://soa-api.soa-example.svc:8000/healthz"]
