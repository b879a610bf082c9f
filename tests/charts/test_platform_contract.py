"""The contract between the tenant chart and the platform: the environment the chart sets is what
`soa_platform.settings.PlatformSettings` reads, and it yields a valid production configuration."""

from __future__ import annotations

from typing import Any

from soa_platform.settings import PlatformSettings
from tests.charts.manifests import Manifest, containers, find, pod_spec

# Set by the chart for the parts of the platform that later issues build (files [3/4], meetings [4/4]).
CONSUMED_LATER = {
    "SOA_DOMAIN",
    "SOA_STORAGE_ENABLED",
    "SOA_STORAGE_MAX_UPLOAD_MIB",
    "SOA_STORAGE_VERSIONING",
    "SOA_S3_ENDPOINT",
    "SOA_S3_PUBLIC_ENDPOINT",
    "SOA_S3_BUCKET",
    "SOA_S3_ACCESS_KEY",
    "SOA_S3_SECRET_KEY",
    "SOA_MEETINGS_ENABLED",
    "SOA_MEETINGS_MAX_PARTICIPANTS",
    "SOA_MEETINGS_MAX_CONCURRENT_MEETINGS",
    "SOA_JANUS_URL",
    "SOA_JANUS_ADMIN_URL",
    "SOA_JANUS_API_SECRET",
    "SOA_JANUS_ADMIN_SECRET",
    "SOA_TURN_URIS",
    "SOA_TURN_SHARED_SECRET",
}


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


def test_every_variable_the_chart_sets_is_a_platform_setting(tenant_default: list[Manifest]) -> None:
    plain, from_secrets = platform_environment(tenant_default)
    fields = {f"SOA_{name.upper()}" for name in PlatformSettings.model_fields}
    unknown = {name for name in {*plain, *from_secrets} if name.startswith("SOA_")} - fields - CONSUMED_LATER
    assert unknown == set()


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
