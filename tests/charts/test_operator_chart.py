"""The operator chart: least-privilege RBAC, deletion protection at admission, one hardened pod."""

from __future__ import annotations

from typing import Any

import celpy
import helm_python
import pytest
from celpy.adapter import json_to_cel

from tests.charts.charts import OPERATOR_NAMESPACE, OPERATOR_RELEASE
from tests.charts.manifests import CLUSTER_SCOPED_KINDS, Manifest, env_of, find, kind_names, manifests_from

MANAGE = ["get", "list", "watch", "create", "patch", "delete"]

# (apiGroup, resource) -> verbs: exactly what the operator manages, nothing else
EXPECTED_GRANTS = {
    ("soa.moitt.gov.pk", "soatenants"): ["get", "list", "watch", "patch", "update"],
    ("soa.moitt.gov.pk", "soatenants/status"): ["get", "patch", "update"],
    ("soa.moitt.gov.pk", "soatenants/finalizers"): ["update"],
    ("", "namespaces"): MANAGE,
    ("", "resourcequotas"): MANAGE,
    ("", "limitranges"): MANAGE,
    ("", "configmaps"): MANAGE,
    ("", "serviceaccounts"): MANAGE,
    ("", "services"): MANAGE,
    ("", "secrets"): ["get", "list", "create", "patch", "delete"],
    ("", "persistentvolumeclaims"): ["get", "list", "patch", "delete"],
    ("apps", "deployments"): MANAGE,
    ("apps", "statefulsets"): MANAGE,
    ("batch", "jobs"): MANAGE,
    ("networking.k8s.io", "networkpolicies"): MANAGE,
    ("networking.k8s.io", "ingresses"): MANAGE,
    ("policy", "poddisruptionbudgets"): MANAGE,
    ("", "events"): ["create", "patch"],
    ("events.k8s.io", "events"): ["create", "patch"],
}


def grants(cluster_role: Manifest) -> dict[tuple[str, str], list[str]]:
    table: dict[tuple[str, str], list[str]] = {}
    for rule in cluster_role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                assert (group, resource) not in table, f"{group}/{resource} granted twice"
                table[(group, resource)] = rule["verbs"]
    return table


def test_default_render_is_the_expected_set_of_objects(operator_default: list[Manifest]) -> None:
    assert kind_names(operator_default) == {
        ("ServiceAccount", "soa-operator"),
        ("ClusterRole", "soa-operator"),
        ("ClusterRoleBinding", "soa-operator"),
        ("ValidatingAdmissionPolicy", "soa-operator-deletion-protection"),
        ("ValidatingAdmissionPolicyBinding", "soa-operator-deletion-protection"),
        ("Deployment", "soa-operator"),
        ("Service", "soa-operator-metrics"),
        ("NetworkPolicy", "soa-operator"),
    }


def test_namespaced_objects_live_in_the_release_namespace(operator_default: list[Manifest]) -> None:
    for obj in operator_default:
        if obj["kind"] not in CLUSTER_SCOPED_KINDS:
            assert obj["metadata"]["namespace"] == OPERATOR_NAMESPACE, obj["kind"]


def test_cluster_role_grants_exactly_what_the_operator_manages(operator_default: list[Manifest]) -> None:
    assert grants(find(operator_default, "ClusterRole", "soa-operator")) == EXPECTED_GRANTS


def test_cluster_role_grants_no_wildcard_escalation_or_leases(operator_default: list[Manifest]) -> None:
    table = grants(find(operator_default, "ClusterRole", "soa-operator"))

    assert all("*" not in group and "*" not in resource for group, resource in table)
    assert all("*" not in verbs for verbs in table.values())
    assert not {"bind", "escalate", "impersonate"} & {v for verbs in table.values() for v in verbs}
    assert not any(group == "coordination.k8s.io" for group, _ in table)


def test_cluster_role_is_bound_to_the_operator_service_account(operator_default: list[Manifest]) -> None:
    binding = find(operator_default, "ClusterRoleBinding", "soa-operator")

    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "soa-operator",
    }
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "soa-operator", "namespace": OPERATOR_NAMESPACE}]


@pytest.fixture(scope="module")
def deletion_policy(operator_default: list[Manifest]) -> dict[str, Any]:
    spec: dict[str, Any] = find(operator_default, "ValidatingAdmissionPolicy", "soa-operator-deletion-protection")[
        "spec"
    ]
    return spec


def admits(expression: str, old_object: dict[str, Any]) -> Any:
    """Evaluate an admission CEL expression for a DELETE (object is null, oldObject the tenant)."""
    env = celpy.Environment()
    program = env.program(env.compile(expression))
    return program.evaluate({"oldObject": json_to_cel(old_object), "object": json_to_cel(None)})


def test_deletion_policy_matches_only_soatenant_deletes(deletion_policy: dict[str, Any]) -> None:
    assert deletion_policy["failurePolicy"] == "Fail"
    assert deletion_policy["matchConstraints"]["resourceRules"] == [
        {
            "apiGroups": ["soa.moitt.gov.pk"],
            "apiVersions": ["*"],
            "operations": ["DELETE"],
            "resources": ["soatenants"],
        }
    ]


def test_deletion_policy_refuses_a_protected_tenant_with_a_clear_message(deletion_policy: dict[str, Any]) -> None:
    (rule,) = deletion_policy["validations"]
    protected = {"metadata": {"name": "moitt"}, "spec": {"deletionProtection": True}}

    assert not admits(rule["expression"], protected)
    assert admits(rule["messageExpression"], protected) == (
        "SOATenant moitt has spec.deletionProtection=true; set it to false first"
    )


def test_deletion_policy_lets_an_unprotected_tenant_go(deletion_policy: dict[str, Any]) -> None:
    (rule,) = deletion_policy["validations"]

    assert admits(rule["expression"], {"metadata": {"name": "moitt"}, "spec": {"deletionProtection": False}})


def test_deletion_policy_binding_denies(operator_default: list[Manifest]) -> None:
    binding = find(operator_default, "ValidatingAdmissionPolicyBinding", "soa-operator-deletion-protection")

    assert binding["spec"] == {"policyName": "soa-operator-deletion-protection", "validationActions": ["Deny"]}


def test_deletion_protection_can_be_left_to_the_finalizer(operator_chart: helm_python.Chart) -> None:
    objects = manifests_from(
        operator_chart.render(
            {"deletionProtection": {"enabled": False}}, name=OPERATOR_RELEASE, namespace=OPERATOR_NAMESPACE
        )
    )

    assert {kind for kind, _ in kind_names(objects)}.isdisjoint(
        {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}
    )


def test_operator_runs_once_with_kopf_liveness(operator_default: list[Manifest]) -> None:
    deployment = find(operator_default, "Deployment", "soa-operator")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]

    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert container["command"] == ["soa", "operator", "run"]
    assert container["args"] == ["--liveness=http://0.0.0.0:8080/healthz"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"metrics": 9090, "health": 8080}


def test_operator_settings_come_from_values(operator_default: list[Manifest]) -> None:
    (container,) = find(operator_default, "Deployment", "soa-operator")["spec"]["template"]["spec"]["containers"]
    env = env_of(container)

    assert env["SOA_OPERATOR_LOG_FORMAT"] == "json"
    assert env["SOA_OPERATOR_METRICS_PORT"] == "9090"
    assert env["SOA_OPERATOR_OIDC_EGRESS_CIDRS"] == '["0.0.0.0/0"]'
    assert env["SOA_OPERATOR_OBSERVABILITY_NAMESPACE"] == "soa-observability"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector.soa-observability.svc:4318"


def test_operator_reaches_the_api_with_a_short_lived_projected_token(operator_default: list[Manifest]) -> None:
    pod = find(operator_default, "Deployment", "soa-operator")["spec"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == "api-access"]
    (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "api-access"]

    assert pod["automountServiceAccountToken"] is False
    assert mount == {
        "name": "api-access",
        "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
        "readOnly": True,
    }
    token = volume["projected"]["sources"][0]["serviceAccountToken"]
    assert token == {"path": "token", "expirationSeconds": 3600}


def test_metrics_service_exposes_port_9090(operator_default: list[Manifest]) -> None:
    service = find(operator_default, "Service", "soa-operator-metrics")

    assert service["spec"]["ports"] == [{"name": "metrics", "port": 9090, "targetPort": "metrics", "protocol": "TCP"}]


def test_operator_schema_rejects_a_misspelled_key(operator_chart: helm_python.Chart) -> None:
    with pytest.raises(helm_python.HelmValuesError, match="additional properties 'logformat' not allowed"):
        operator_chart.validate_schema({"logformat": "json"})


def test_operator_schema_rejects_an_unknown_log_format(operator_chart: helm_python.Chart) -> None:
    with pytest.raises(helm_python.HelmValuesError, match="at '/logFormat'"):
        operator_chart.validate_schema({"logFormat": "xml"})


def test_operator_env_maps_onto_operator_settings(
    operator_default: list[Manifest], monkeypatch: pytest.MonkeyPatch
) -> None:
    from soa_operator.settings import OperatorSettings

    container = find(operator_default, "Deployment", "soa-operator")["spec"]["template"]["spec"]["containers"][0]
    env = {k: v for k, v in env_of(container).items() if k.startswith("SOA_OPERATOR_")}
    fields = {f"SOA_OPERATOR_{name.upper()}" for name in OperatorSettings.model_fields}
    assert set(env) <= fields, set(env) - fields
    for key, value in env.items():
        monkeypatch.setenv(key, str(value))
    parsed = OperatorSettings()  # every value the chart sets parses, e.g. the CIDR list as JSON
    assert parsed.oidc_egress_cidrs == ["0.0.0.0/0"]
    assert str(parsed.charts_dir) == "/charts"
