"""The contract between the tenant chart and the platform: the environment the chart sets is what
`soa_platform.settings.PlatformSettings` reads, and it yields a valid production configuration."""

from __future__ import annotations

from typing import Any

from soa_platform.settings import PlatformSettings
from tests.charts.manifests import Manifest, containers, find, pod_spec


def platform_environment(objects: list[Manifest]) -> tuple[dict[str, str], set[str]]:
    """The api container's plain variables (ConfigMap + literal env) and the names it takes from Secrets."""
    plain: dict[str, str] = dict(find(objects, "ConfigMap", "soa-platform")["data"])
    from_secrets: set[str] = set()
    spec = pod_spec(find(objects, "Deployment", "soa-api"))
    assert spec is not None
    api = containers(spec)[0]
    for item in api.get("env", []):
        if "value" in item:
            plain[item["name"]] = item["value"]
        else:
            from_secrets.add(item["name"])
    return plain, from_secrets


def soa_variables(objects: list[Manifest]) -> dict[str, set[str]]:
    """The SOA_* names each platform container (api, worker, beat, migrate) gets: ConfigMap and env."""
    config = set(find(objects, "ConfigMap", "soa-platform")["data"])
    found: dict[str, set[str]] = {}
    for obj in objects:
        spec = pod_spec(obj)
        for container in containers(spec) if spec else []:
            if {"configMapRef": {"name": "soa-platform"}} in container.get("envFrom", []):
                names = config | {item["name"] for item in container.get("env", [])}
                found[f"{obj['kind']}/{obj['metadata']['name']}"] = {n for n in names if n.startswith("SOA_")}
    return found


def test_every_variable_the_chart_sets_is_a_platform_setting(tenant_all_features: list[Manifest]) -> None:
    fields = {f"SOA_{name.upper()}" for name in PlatformSettings.model_fields}
    per_container = soa_variables(tenant_all_features)

    assert set(per_container) == {
        "Deployment/soa-api",
        "Deployment/soa-worker",
        "Deployment/soa-beat",
        "Job/soa-migrate-0-1-0",
    }
    unknown = {where: sorted(names - fields) for where, names in per_container.items() if names - fields}
    assert unknown == {}


def test_the_chart_environment_with_generated_secrets_is_a_valid_production_configuration(
    tenant_default: list[Manifest], monkeypatch: Any
) -> None:
    plain, from_secrets = platform_environment(tenant_default)
    for name, value in plain.items():
        monkeypatch.setenv(name, value)
    for name in from_secrets:
        monkeypatch.setenv(name, "generated-" + "x" * 40)
    settings = PlatformSettings()
    assert settings.environment == "production"
    assert settings.tenant == plain["SOA_TENANT"]
    assert settings.sqlalchemy_url.startswith(f"postgresql+asyncpg://generated-{'x' * 40}:")
    assert settings.effective_redis_url == f"redis://{plain['SOA_REDIS_HOST']}:6379/0"
    assert settings.metrics_port == 9100
    assert settings.domain == "example.soa.gov.pk"
    assert settings.s3_public_endpoint == "https://example.soa.gov.pk"
    assert settings.storage_quota_bytes == 50 * 2**30
    assert settings.janus_url == "http://soa-janus.soa-example.svc:8088/janus"
    assert settings.janus_public_url == "https://example.soa.gov.pk/janus"
    assert settings.janus_admin_url == "http://soa-janus.soa-example.svc:7088/admin"
    assert settings.turn_uris == [
        "turn:example.soa.gov.pk:3478?transport=udp",
        "turn:example.soa.gov.pk:3478?transport=tcp",
    ]
