"""The tenant chart's values contract: a strict schema, and validateValues for what it can't say."""

from __future__ import annotations

import json
from typing import Any

import helm_python
import pytest
import yaml

from tests.charts.charts import OPERATOR_CHART, TENANT_CHART, RenderTenant


def schema_of(chart_dir: Any) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((chart_dir / "values.schema.json").read_text())
    return schema


def resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = schema["definitions"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def closed_objects(schema: dict[str, Any], node: dict[str, Any], where: str = "") -> list[str]:
    """Paths of object schemas that accept undeclared keys."""
    node = resolve(schema, node)
    open_paths = []
    if "properties" in node:
        if node.get("additionalProperties") is not False:
            open_paths.append(where or "<root>")
        for key, child in node["properties"].items():
            open_paths += closed_objects(schema, child, f"{where}.{key}")
    return open_paths


def keys_mismatch(schema: dict[str, Any], node: dict[str, Any], values: Any, where: str = "") -> list[str]:
    """Where values.yaml and the schema disagree about which keys exist."""
    node = resolve(schema, node)
    if not isinstance(values, dict) or "properties" not in node:
        return []
    mismatches = []
    declared, present = set(node["properties"]), set(values)
    mismatches += [f"{where}.{k}: in values.yaml, not in the schema" for k in present - declared]
    mismatches += [f"{where}.{k}: in the schema, not in values.yaml" for k in declared - present]
    for key in declared & present:
        mismatches += keys_mismatch(schema, node["properties"][key], values[key], f"{where}.{key}")
    return mismatches


@pytest.mark.parametrize("chart_dir", [TENANT_CHART, OPERATOR_CHART], ids=["soa-tenant", "soa-operator"])
def test_schema_closes_every_object(chart_dir: Any) -> None:
    schema = schema_of(chart_dir)

    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert closed_objects(schema, schema) == []


@pytest.mark.parametrize("chart_dir", [TENANT_CHART, OPERATOR_CHART], ids=["soa-tenant", "soa-operator"])
def test_schema_declares_exactly_the_keys_of_values_yaml(chart_dir: Any) -> None:
    schema = schema_of(chart_dir)
    values = yaml.safe_load((chart_dir / "values.yaml").read_text())

    assert keys_mismatch(schema, schema, values) == []


def test_schema_accepts_the_defaults(tenant_chart: helm_python.Chart, operator_chart: helm_python.Chart) -> None:
    tenant_chart.validate_schema(tenant_chart.values)
    operator_chart.validate_schema(operator_chart.values)


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"replica": {"api": 2}}, "additional properties 'replica' not allowed"),
        ({"components": {"storage": {"capacty": "10Gi"}}}, "additional properties 'capacty' not allowed"),
        ({"resources": {"api": {"limits": {"cpus": "1"}}}}, "additional properties 'cpus' not allowed"),
    ],
    ids=["top-level", "nested", "deep"],
)
def test_schema_rejects_a_misspelled_key(
    tenant_chart: helm_python.Chart, values: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(helm_python.HelmValuesError, match=complaint):
        tenant_chart.validate_schema(values)


@pytest.mark.parametrize(
    ("values", "where"),
    [
        ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
        ({"tenant": {"name": "Ministry_of_IT"}}, "/tenant/name"),
        ({"tenant": {"name": "a" * 60}}, "/tenant/name"),
        ({"platform": {"version": "latest"}}, "/platform/version"),
        ({"replicas": {"beat": 2}}, "/replicas/beat"),
        ({"quotas": {"cpu": "eight"}}, "/quotas/cpu"),
        ({"images": {"redis": "docker.io/library/redis:latest"}}, "/images/redis"),
        ({"networkPolicy": {"oidcEgressCIDRs": ["sso.gov.pk"]}}, "/networkPolicy/oidcEgressCIDRs/0"),
        ({"identity": {"oidc": {"issuer": "http://sso.gov.pk"}}}, "/identity/oidc/issuer"),
        ({"tracing": {"sampleRatio": 1.5}}, "/tracing/sampleRatio"),
    ],
    ids=[
        "enum",
        "dns-label",
        "namespace-too-long",
        "version",
        "single-beat",
        "cpu-quantity",
        "latest-tag",
        "cidr",
        "https-issuer",
        "ratio",
    ],
)
def test_schema_rejects_a_bad_value(tenant_chart: helm_python.Chart, values: dict[str, Any], where: str) -> None:
    with pytest.raises(helm_python.HelmValuesError, match=f"at '{where}'"):
        tenant_chart.validate_schema(values)


def test_render_refuses_values_the_schema_rejects(render_tenant: RenderTenant) -> None:
    with pytest.raises(helm_python.HelmValuesError, match="additional properties 'replica' not allowed"):
        render_tenant({"replica": {"api": 2}})


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"platform": {"version": "0.1.0"}, "migration": {"version": ""}},
            "platform.version is set but migration.version is empty",
        ),
        (
            {"migration": {"version": "1.0.0-" + "a" * 50}},
            "migration Job name .* is 68 characters; Kubernetes allows 63",
        ),
        ({"tenant": {"domain": ""}}, "ingress.enabled is true but tenant.domain is empty"),
        (
            {"identity": {"oidc": {"issuer": "https://sso.gov.pk/realms/x"}}},
            "identity.oidc.clientId is empty",
        ),
        ({"identity": {"oidc": {"clientId": "soa"}}}, "identity.oidc.issuer is empty"),
        (
            {
                "identity": {"oidc": {"issuer": "https://sso.gov.pk/realms/x", "clientId": "soa"}},
                "networkPolicy": {"oidcEgressCIDRs": []},
            },
            "networkPolicy.oidcEgressCIDRs is empty, so the api could never reach the issuer",
        ),
        (
            {"networkPolicy": {"mediaUdpPorts": {"janusMin": 30000}}},
            r"mediaUdpPorts.janusMin \(30000\) is above janusMax \(20199\)",
        ),
        (
            {"limitRange": {"max": {"cpu": "1"}}},
            r"resources.janus.limits.cpu \(2\) is above limitRange.max.cpu \(1\)",
        ),
        (
            {"limitRange": {"defaultRequest": {"memory": "1Gi"}}},
            r"limitRange.defaultRequest.memory \(1Gi\) is above limitRange.default.memory \(512Mi\)",
        ),
        (
            {"resources": {"api": {"requests": {"cpu": "2"}}}},
            r"resources.api.requests.cpu \(2\) is above its limit \(1\)",
        ),
        ({"quotas": {"cpu": "2"}}, "requests.cpu needed / allowed by the ResourceQuota: 2850m / 2000m"),
        ({"quotas": {"memory": "4Gi"}}, "requests.memory needed / allowed by the ResourceQuota: 5376Mi / 4096Mi"),
        ({"quotas": {"pods": 5}}, "the workloads need 12 pods but quotas.pods allows 5"),
        ({"quotas": {"storage": "50Gi"}}, r"the volumes \(postgres 20Gi, redis 1Gi, minio 50Gi\) need 72704Mi"),
    ],
    ids=[
        "release-before-migration",
        "job-name-too-long",
        "ingress-without-domain",
        "issuer-without-client",
        "client-without-issuer",
        "issuer-unreachable",
        "media-range-reversed",
        "container-above-limitrange",
        "limitrange-defaults-reversed",
        "request-above-limit",
        "cpu-over-quota",
        "memory-over-quota",
        "pods-over-quota",
        "volumes-over-quota",
    ],
)
def test_impossible_combination_fails_with_a_clear_message(
    render_tenant: RenderTenant, values: dict[str, Any], message: str
) -> None:
    with pytest.raises(helm_python.HelmRenderError, match=f"soa-tenant: .*{message}"):
        render_tenant(values)


def test_suspended_tenant_needs_no_quota_for_stopped_pods(render_tenant: RenderTenant) -> None:
    # a tenant shrunk below its running footprint can still be suspended
    objects = render_tenant({"suspended": True, "quotas": {"cpu": "1", "memory": "1Gi", "pods": 2}})

    assert objects
