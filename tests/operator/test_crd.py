"""The CRD is generated from the model, ships unchanged, and its schema and CEL rules hold."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from soa_operator import labels
from soa_operator.api.crd import build_crd, render_crd_yaml
from tests.support.cel import evaluate

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_CRD = ROOT / "charts/soa-operator/crds/soatenants.soa.moitt.gov.pk.yaml"
EXAMPLE = ROOT / "docs/examples/moitt.yaml"


def _schema() -> dict[str, Any]:
    return build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def _example() -> dict[str, Any]:
    return yaml.safe_load(EXAMPLE.read_text())


def _rules(schema: dict[str, Any]) -> list[dict[str, str]]:
    return list(schema.get("x-kubernetes-validations", []))


def _validate(obj: dict[str, Any]) -> None:
    jsonschema.validate(obj, _schema())


def test_shipped_crd_equals_generated_from_model() -> None:
    assert SHIPPED_CRD.read_text() == render_crd_yaml(), "run: soa crd generate -o " + str(SHIPPED_CRD)


def test_crd_names_scope_and_printer_columns() -> None:
    crd = build_crd()
    spec = crd["spec"]
    assert crd["metadata"]["name"] == "soatenants.soa.moitt.gov.pk"
    assert spec["scope"] == "Cluster"
    assert spec["names"]["shortNames"] == ["soat"]
    assert spec["names"]["categories"] == ["soa"]
    version = spec["versions"][0]
    assert version["name"] == "v1alpha1"
    assert version["subresources"] == {"status": {}}
    assert [c["name"] for c in version["additionalPrinterColumns"]] == ["Phase", "Ready", "Version", "URL", "Age"]


def test_schema_is_structural() -> None:
    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for forbidden in ("$ref", "anyOf", "title", "$defs"):
                assert forbidden not in node, f"{forbidden} at {path}"
            assert node.get("additionalProperties") is not False, path
            for key, child in node.items():
                walk(child, f"{path}.{key}")
        elif isinstance(node, list):
            for i, child in enumerate(node):
                walk(child, f"{path}[{i}]")

    walk(_schema(), "openAPIV3Schema")


def test_example_tenant_is_valid() -> None:
    _validate(_example())


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("size",), "huge", "is not one of"),
        (("deletionPolicy",), "Shred", "is not one of"),
        (("domain",), "Not A Domain", "does not match"),
        (("version",), "v1", "does not match"),
        (("components", "messaging", "maxMessageBytes"), 10, "less than the minimum"),
        (("components", "storage", "capacity"), "lots", "does not match"),
        (("tracing", "sampleRatio"), 1.5, "greater than the maximum"),
        (("admins",), ["not-an-email"], "does not match"),
    ],
)
def test_schema_rejects_invalid_field(path: tuple[str, ...], value: Any, message: str) -> None:
    obj = _example()
    node = obj["spec"]
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(jsonschema.ValidationError, match=message):
        _validate(obj)


def test_schema_requires_display_name() -> None:
    obj = _example()
    del obj["spec"]["displayName"]
    with pytest.raises(jsonschema.ValidationError, match="displayName"):
        _validate(obj)


def test_defaults_cover_every_component() -> None:
    spec_schema = _schema()["properties"]["spec"]["properties"]
    assert spec_schema["size"]["default"] == "small"
    assert spec_schema["deletionPolicy"]["default"] == "Retain"
    assert spec_schema["deletionProtection"]["default"] is True
    assert spec_schema["components"]["default"] == {}
    assert spec_schema["components"]["properties"]["storage"]["properties"]["capacity"]["default"] == "50Gi"


class TestCelRules:
    def _spec_rule(self, fragment: str) -> str:
        return next(r["rule"] for r in _rules(_schema()["properties"]["spec"]) if fragment in r["rule"])

    def test_custom_size_requires_all_quotas(self) -> None:
        rule = self._spec_rule("custom")
        assert not evaluate(rule, {"size": "custom", "quotas": {"seats": 10}})
        full = {"seats": 10, "storage": "1Ti", "cpu": "4", "memory": "8Gi"}
        assert evaluate(rule, {"size": "custom", "quotas": full})
        assert evaluate(rule, {"size": "small"})

    def test_oidc_cannot_be_removed(self) -> None:
        rule = self._spec_rule("oldSelf.identity.oidc")
        old = {"identity": {"oidc": {"issuer": "https://sso.gov.pk/a", "clientId": "soa"}}}
        assert not evaluate(rule, {"identity": {}}, old)
        assert evaluate(rule, copy.deepcopy(old), old)

    def test_issuer_is_immutable(self) -> None:
        oidc = _schema()["properties"]["spec"]["properties"]["identity"]["properties"]["oidc"]
        rule = _rules(oidc["properties"]["issuer"])[0]["rule"]
        assert not evaluate(rule, "https://sso.gov.pk/b", "https://sso.gov.pk/a")
        assert evaluate(rule, "https://sso.gov.pk/a", "https://sso.gov.pk/a")

    def test_storage_capacity_cannot_shrink(self) -> None:
        storage = _schema()["properties"]["spec"]["properties"]["components"]["properties"]["storage"]
        rule = _rules(storage["properties"]["capacity"])[0]["rule"]
        assert evaluate(rule, "100Gi", "50Gi")
        assert not evaluate(rule, "40Gi", "50Gi")
        assert evaluate(rule, "1Ti", "1000Gi")

    @pytest.mark.parametrize(
        ("name", "ok"),
        [("moitt", True), ("mo-itt2", True), ("Moitt", False), ("2moitt", False), ("a" * 60, False), ("a" * 59, True)],
    )
    def test_tenant_name_is_a_short_dns_label(self, name: str, ok: bool) -> None:
        rule = _rules(_schema())[0]["rule"]
        assert evaluate(rule, {"metadata": {"name": name}}) is ok


def test_model_and_labels_agree_on_group() -> None:
    assert build_crd()["spec"]["group"] == labels.GROUP
