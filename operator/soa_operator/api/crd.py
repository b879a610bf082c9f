"""Generate the SOATenant CustomResourceDefinition from the pydantic models.

Kubernetes wants a *structural* schema: no ``$ref``, no ``anyOf`` for optionals, no titles. This
module converts pydantic's JSON schema into that shape, keeping defaults, bounds, patterns, enums
and the CEL rules declared beside the fields.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml

from soa_operator import labels
from soa_operator.api.model import ROOT_RULES, SPEC_RULES, SOATenantSpec, SOATenantStatus

_DROPPED_KEYS = {"title"}


def _resolve(node: Any, defs: dict[str, Any]) -> Any:
    """Inline ``$ref``s, collapse ``Optional[X]`` to ``X`` and drop keys Kubernetes rejects."""
    if isinstance(node, list):
        return [_resolve(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    if "$ref" in node:
        target = copy.deepcopy(defs[node.pop("$ref").rsplit("/", 1)[-1]])
        node = {**target, **node}
    if "anyOf" in node:
        variants = [v for v in node.pop("anyOf") if v.get("type") != "null"]
        if len(variants) != 1:
            raise ValueError(f"cannot express anyOf {variants} structurally")
        node = {**variants[0], **node}
        if node.get("default", ...) is None:
            node.pop("default")
        return _resolve(node, defs)
    # extra="forbid" becomes additionalProperties: false, which structural schemas refuse; the
    # server prunes (or, with strict field validation, rejects) unknown fields on its own.
    if node.get("additionalProperties") is False:
        node.pop("additionalProperties")
    resolved = {k: _resolve(v, defs) for k, v in node.items() if k not in _DROPPED_KEYS}
    if resolved.get("type") == "object" and "properties" in resolved:
        _default_nested_objects(resolved)
    return resolved


def _default_nested_objects(obj_schema: dict[str, Any]) -> None:
    """Give object-typed properties ``default: {}`` so the server applies their inner defaults."""
    required = set(obj_schema.get("required", []))
    for name, prop in obj_schema["properties"].items():
        if name in required or "default" in prop:
            continue
        if prop.get("type") == "object" and any("default" in p for p in prop.get("properties", {}).values()):
            prop["default"] = {}


def structural_schema(model: type[Any]) -> dict[str, Any]:
    """The structural OpenAPI v3 schema of a pydantic model."""
    raw = model.model_json_schema(mode="validation")
    defs = raw.pop("$defs", {})
    schema: dict[str, Any] = _resolve(raw, defs)
    return schema


def _status_schema() -> dict[str, Any]:
    schema = structural_schema(SOATenantStatus)
    conditions = schema["properties"]["conditions"]
    conditions.pop("default", None)
    conditions["x-kubernetes-list-type"] = "map"
    conditions["x-kubernetes-list-map-keys"] = ["type"]
    conditions["maxItems"] = 16
    components = schema["properties"]["components"]
    components.pop("default", None)
    components["maxProperties"] = 8
    return schema


def _spec_schema() -> dict[str, Any]:
    schema = structural_schema(SOATenantSpec)
    schema["x-kubernetes-validations"] = SPEC_RULES
    return schema


PRINTER_COLUMNS = [
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
    {"name": "Version", "type": "string", "jsonPath": ".status.version"},
    {"name": "URL", "type": "string", "jsonPath": ".status.url"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


def build_crd() -> dict[str, Any]:
    """The complete CustomResourceDefinition object."""
    root = {
        "type": "object",
        "description": "A ministry's isolated SOA workspace: messaging, files and meetings.",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": _spec_schema(),
            "status": _status_schema(),
        },
        "x-kubernetes-validations": ROOT_RULES,
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": labels.CRD_NAME,
            "labels": {labels.PART_OF: "soa", "app.kubernetes.io/name": "soa-operator"},
        },
        "spec": {
            "group": labels.GROUP,
            "scope": "Cluster",
            "names": {
                "kind": labels.KIND,
                "listKind": f"{labels.KIND}List",
                "plural": labels.PLURAL,
                "singular": labels.SINGULAR,
                "shortNames": [labels.SHORT_NAME],
                "categories": [labels.CATEGORY],
            },
            "versions": [
                {
                    "name": labels.VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": root},
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                }
            ],
        },
    }


def render_crd_yaml() -> str:
    """The CRD as the YAML file shipped in ``charts/soa-operator/crds/``."""
    header = "# Generated by `soa crd generate` from soa_operator.api.model. Do not edit by hand.\n"
    return header + yaml.safe_dump(build_crd(), sort_keys=False, width=120)
