"""Reading SOATenant files for the CLI, with errors a person can act on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from soa_operator import labels
from soa_operator.api.model import SOATenantSpec, parse_spec
from soa_operator.reconcile.tenant import SpecProblem, check_feasible

NAME_RULE = "a DNS label of at most 59 characters starting with a letter"


class ManifestError(Exception):
    """The file cannot become a SOATenant; the message says exactly why."""


def load_tenant(path: Path) -> dict[str, Any]:
    """Read, parse and validate one SOATenant manifest (without touching a cluster)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ManifestError(f"cannot read {path}: {exc.strerror}") from None
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise ManifestError(f"{path} is not valid YAML: {exc}") from None
    if len(docs) != 1 or not isinstance(docs[0], dict):
        raise ManifestError(f"{path} must hold exactly one SOATenant object, found {len(docs)} documents")
    obj: dict[str, Any] = docs[0]
    if obj.get("apiVersion") != labels.API_VERSION or obj.get("kind") != labels.KIND:
        raise ManifestError(
            f"{path}: expected apiVersion {labels.API_VERSION} and kind {labels.KIND}, "
            f"got {obj.get('apiVersion')!r} / {obj.get('kind')!r}"
        )
    name = str((obj.get("metadata") or {}).get("name") or "")
    if not valid_name(name):
        raise ManifestError(f"{path}: metadata.name {name!r} must be {NAME_RULE}")
    validate_spec(obj.get("spec"), str(path))
    return obj


def valid_name(name: str) -> bool:
    import re

    return bool(re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", name)) and len(name) <= 59


def validate_spec(spec: Any, where: str) -> SOATenantSpec:
    try:
        parsed = parse_spec(spec)
        check_feasible(parsed)
    except ValidationError as exc:
        problems = "; ".join(f"spec.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()[:10])
        raise ManifestError(f"{where}: {problems}") from None
    except SpecProblem as exc:
        raise ManifestError(f"{where}: {exc}") from None
    return parsed
