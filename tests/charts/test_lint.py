"""Both charts pass `helm lint --strict` (Helm's own linter through helm_python)."""

from __future__ import annotations

from pathlib import Path

import helm_python
import pytest

from tests.charts.charts import OPERATOR_CHART, OPERATOR_NAMESPACE, TENANT_CHART

WARNING = 2


@pytest.mark.parametrize(
    ("chart", "namespace"),
    [(TENANT_CHART, "soa-example"), (OPERATOR_CHART, OPERATOR_NAMESPACE)],
    ids=["soa-tenant", "soa-operator"],
)
def test_chart_lints_clean(chart: Path, namespace: str) -> None:
    report = helm_python.lint(chart, strict=True, namespace=namespace)

    problems = [m for m in report["messages"] if m["severity"] >= WARNING]
    assert report["errors"] == []
    assert problems == []
