"""The operator's values always satisfy the tenant chart, and both agree on names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from soa_operator import labels
from soa_operator.api.model import SOATenantSpec
from soa_operator.reconcile.rollout import migration_job_name
from soa_operator.rendering.render import desired_hash, render_tenant_manifests
from soa_operator.rendering.values import Rollout, build_values
from soa_operator.settings import OperatorSettings

SETTINGS = OperatorSettings()
UID = "6f1c1d7e-2b3a-4c5d-8e9f-0a1b2c3d4e5f"
ROOT = Path(__file__).resolve().parents[2]


def _render(spec: dict[str, Any], rollout: Rollout | None = None, name: str = "moitt") -> list[dict[str, Any]]:
    parsed = SOATenantSpec.model_validate({"displayName": "X", **spec})
    rollout = rollout or Rollout(parsed.version, parsed.version)
    values = build_values(name, parsed, rollout, SETTINGS, uid=UID)
    return render_tenant_manifests(SETTINGS.tenant_chart, values, name, UID)


CUSTOM = {"size": "custom", "quotas": {"seats": 20000, "storage": "10Ti", "cpu": "96", "memory": "192Gi"}}


@pytest.mark.parametrize(
    "spec",
    [
        {"size": "small"},
        {"size": "medium"},
        {"size": "large"},
        CUSTOM,
        {"size": "custom", "quotas": {"seats": 50, "storage": "100Gi", "cpu": "8", "memory": "16Gi"}},
        {"suspended": True},
        {"components": {"storage": {"enabled": False}, "meetings": {"enabled": False}}},
        {"identity": {"oidc": {"issuer": "https://sso.gov.pk/realms/x", "clientId": "soa"}}},
        {"version": "1.2.3-rc.1"},
    ],
    ids=["small", "medium", "large", "custom-big", "custom-small", "suspended", "minimal", "oidc", "prerelease"],
)
def test_every_accepted_spec_renders(spec: dict[str, Any]) -> None:
    objects = _render(spec)
    assert objects[0]["kind"] == "Namespace"
    assert all(o["metadata"]["labels"][labels.TENANT_LABEL] == "moitt" for o in objects)


def test_first_provisioning_renders_the_migration_but_no_platform_workloads() -> None:
    names = {(o["kind"], o["metadata"]["name"]) for o in _render({}, Rollout("", "0.1.0"))}
    assert ("Job", "soa-migrate-0-1-0") in names
    assert not {("Deployment", n) for n in ("soa-api", "soa-worker", "soa-beat")} & names


@pytest.mark.parametrize("version", ["0.1.0", "10.20.30", "1.0.0-rc.1", "2.0.0-beta.2.x-y"])
def test_operator_and_chart_agree_on_the_migration_job_name(version: str) -> None:
    jobs = [o["metadata"]["name"] for o in _render({"version": version}) if o["kind"] == "Job"]
    assert jobs == [migration_job_name(version)]


def test_hash_is_stable_and_changes_with_content() -> None:
    first, second = _render({}), _render({})
    assert [o["metadata"]["annotations"][labels.DESIRED_HASH_ANNOTATION] for o in first] == [
        o["metadata"]["annotations"][labels.DESIRED_HASH_ANNOTATION] for o in second
    ]
    config = next(o for o in _render({"tracing": {"sampleRatio": 0.5}}) if o["kind"] == "ConfigMap")
    before = next(o for o in first if o["kind"] == "ConfigMap")
    assert desired_hash(config) != desired_hash(before)


def test_render_cache_reuses_an_unchanged_render_and_renders_again_on_change() -> None:
    from soa_operator.rendering.render import RenderCache

    cache = RenderCache(SETTINGS.tenant_chart)
    spec = SOATenantSpec.model_validate({"displayName": "X"})
    values = build_values("moitt", spec, Rollout("0.1.0", "0.1.0"), SETTINGS, uid=UID)
    first = cache.render(values, "moitt", UID)
    again = cache.render(values, "moitt", UID)
    assert again == first
    assert again is not first, "callers get their own copy to mutate"
    changed = build_values("moitt", spec, Rollout("", "0.1.0"), SETTINGS, uid=UID)
    assert len(cache.render(changed, "moitt", UID)) < len(first)
    cache.forget("moitt")
    assert len(cache) == 0
