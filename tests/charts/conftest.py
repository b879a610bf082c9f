"""Fixtures for the chart tests: the real charts rendered by Helm's own SDK (helm_python).

A render takes about a millisecond, so each test renders exactly the values it is about; the
renders many tests share (defaults, every feature on, the operator chart) are session-scoped.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import helm_python
import pytest

from tests.charts.charts import (
    ALL_FEATURES,
    OPERATOR_CHART,
    OPERATOR_NAMESPACE,
    OPERATOR_RELEASE,
    REPO_ROOT,
    TENANT_CHART,
    TENANT_RELEASE,
    RenderTenant,
    RenderTenantFiles,
)
from tests.charts.manifests import Manifest, manifests_from


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "checkov: runs the real checkov from .venv-checkov on rendered charts (~5-10 s)")


@pytest.fixture(scope="session")
def tenant_chart() -> Iterator[helm_python.Chart]:
    with helm_python.Chart.load(TENANT_CHART) as chart:
        yield chart


@pytest.fixture(scope="session")
def operator_chart() -> Iterator[helm_python.Chart]:
    with helm_python.Chart.load(OPERATOR_CHART) as chart:
        yield chart


@pytest.fixture(scope="session")
def render_tenant_files(tenant_chart: helm_python.Chart) -> RenderTenantFiles:
    """Render the tenant chart as the operator does: template path -> text (NOTES.txt included).

    The namespace is soa-<tenant.name> unless a test passes another one.
    """

    def render(values: dict[str, Any] | None = None, *, namespace: str | None = None) -> dict[str, str]:
        values = values or {}
        if namespace is None:
            namespace = "soa-" + tenant_chart.merge_values(values)["tenant"]["name"]
        return tenant_chart.render(values, name=TENANT_RELEASE, namespace=namespace)

    return render


@pytest.fixture(scope="session")
def render_tenant(render_tenant_files: RenderTenantFiles) -> RenderTenant:
    """Render the tenant chart with ``values`` (merged over the defaults) into manifests."""

    def render(values: dict[str, Any] | None = None, *, namespace: str | None = None) -> list[Manifest]:
        return manifests_from(render_tenant_files(values, namespace=namespace))

    return render


@pytest.fixture(scope="session")
def tenant_default(render_tenant: RenderTenant) -> list[Manifest]:
    return render_tenant()


@pytest.fixture(scope="session")
def tenant_all_features(render_tenant: RenderTenant) -> list[Manifest]:
    return render_tenant(ALL_FEATURES)


@pytest.fixture(scope="session")
def operator_default(operator_chart: helm_python.Chart) -> list[Manifest]:
    return manifests_from(operator_chart.render({}, name=OPERATOR_RELEASE, namespace=OPERATOR_NAMESPACE))


@pytest.fixture(scope="session")
def example_cli_render() -> list[Manifest]:
    """What `soa tenant render -f docs/examples/moitt.yaml --uid …` prints: the operator's own output."""
    import yaml
    from typer.testing import CliRunner

    from soa_operator.cli.main import app

    example = REPO_ROOT / "docs" / "examples" / "moitt.yaml"
    uid = "6f1c1d7e-2b3a-4c5d-8e9f-0a1b2c3d4e5f"
    result = CliRunner().invoke(app, ["tenant", "render", "-f", str(example), "--uid", uid])
    assert result.exit_code == 0, result.output
    return [doc for doc in yaml.safe_load_all(result.output) if doc]
