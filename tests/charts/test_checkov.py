"""checkov finds nothing in the rendered charts, except checks skipped in place with a reason.

Runs the real checkov from its own venv (.venv-checkov, see scripts/bootstrap.sh): its helm
framework needs a helm binary, so it reads the manifests helm_python rendered.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.charts.charts import REPO_ROOT
from tests.charts.manifests import Manifest

CHECKOV = REPO_ROOT / ".venv-checkov" / "bin" / "checkov"
SKIP_ANNOTATION = re.compile(r"^checkov\.io/skip\d+$")
SKIP_VALUE = re.compile(r"^CKV2?_K8S_\d+=(?P<reason>.+)$")

pytestmark = pytest.mark.checkov


@pytest.fixture(scope="module")
def checkov_report(
    tmp_path_factory: pytest.TempPathFactory,
    tenant_default: list[Manifest],
    tenant_all_features: list[Manifest],
    operator_default: list[Manifest],
    example_cli_render: list[Manifest],
) -> dict[str, Any]:
    if not CHECKOV.exists():
        if os.environ.get("SOA_WITH_CHECKOV") == "0":
            pytest.skip("SOA_WITH_CHECKOV=0: checkov not installed")
        pytest.fail(f"{CHECKOV} is missing; run scripts/bootstrap.sh")
    out = tmp_path_factory.mktemp("checkov")
    for name, objects in (
        ("tenant-default", tenant_default),
        ("tenant-all-features", tenant_all_features),
        ("operator", operator_default),
        ("soa-tenant-render-moitt", example_cli_render),
    ):
        (out / f"{name}.yaml").write_text(yaml.safe_dump_all(objects, sort_keys=False))
    result = subprocess.run(
        [str(CHECKOV), "--framework", "kubernetes", "-d", str(out), "--compact", "--quiet", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=110,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr[-2000:]  # 1: checks failed, reported below
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def test_checkov_reports_no_failed_check(checkov_report: dict[str, Any]) -> None:
    failed = [f"{c['check_id']} {c['resource']}: {c['check_name']}" for c in checkov_report["results"]["failed_checks"]]

    assert checkov_report["summary"]["parsing_errors"] == 0
    assert checkov_report["summary"]["resource_count"] > 40
    assert failed == []


def test_checkov_honours_every_in_place_skip(
    checkov_report: dict[str, Any],
    tenant_default: list[Manifest],
    tenant_all_features: list[Manifest],
    operator_default: list[Manifest],
    example_cli_render: list[Manifest],
) -> None:
    annotated = sum(
        1
        for obj in tenant_default + tenant_all_features + operator_default + example_cli_render
        for key in (obj["metadata"].get("annotations") or {})
        if SKIP_ANNOTATION.match(key)
    )

    assert checkov_report["summary"]["skipped"] == annotated


def test_checkov_skips_are_annotated_in_place(
    tenant_all_features: list[Manifest], operator_default: list[Manifest]
) -> None:
    for obj in tenant_all_features + operator_default:
        for key, value in (obj["metadata"].get("annotations") or {}).items():
            if key.startswith("checkov.io/"):
                assert SKIP_ANNOTATION.match(key), key
                match = SKIP_VALUE.match(value)
                assert match, f"{obj['metadata']['name']}: {value}"
                assert len(match["reason"]) > 20, f"{obj['metadata']['name']}: {value}"


def test_repo_has_no_global_checkov_configuration() -> None:
    assert not list(Path(REPO_ROOT).glob(".checkov.y*ml"))
