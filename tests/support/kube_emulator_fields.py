"""Label/field selectors and the name/label validation rules of the Kubernetes emulator."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_LABEL = re.compile(_LABEL)
DNS1123_SUBDOMAIN = re.compile(rf"{_LABEL}(\.{_LABEL})*")
_QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")

_KEY = r"[A-Za-z0-9][-A-Za-z0-9_./]*"
_VALUE = r"[-A-Za-z0-9_.]*"
_SET_TERM = re.compile(rf"\s*({_KEY})\s+(in|notin)\s*\(([^)]*)\)\s*")
_EQUALITY_TERM = re.compile(rf"\s*({_KEY})\s*(==|=|!=)\s*({_VALUE})\s*")
_EXISTS_TERM = re.compile(rf"\s*(!?)\s*({_KEY})\s*")

# Names of these kinds are DNS-1123 labels (no dots, at most 63 characters).
LABEL_NAMED_PLURALS = frozenset({"namespaces", "services"})
# RBAC objects allow path-segment names such as "system:controller".
FREE_NAMED_PLURALS = frozenset({"roles", "rolebindings", "clusterroles", "clusterrolebindings"})


@dataclasses.dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!exists"
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        match self.op:
            case "=" | "in":
                return present and value in self.values
            case "!=" | "notin":
                return not present or value not in self.values
            case "exists":
                return present
            case _:
                return not present


def split_terms(selector: str) -> list[str]:
    """Split on commas that are not inside the parentheses of a set-based term."""
    terms: list[str] = []
    depth, start = 0, 0
    for index, char in enumerate(selector):
        depth += 1 if char == "(" else -1 if char == ")" else 0
        if char == "," and depth == 0:
            terms.append(selector[start:index])
            start = index + 1
    terms.append(selector[start:])
    return [term for term in terms if term.strip()]


def parse_label_selector(selector: str | None) -> list[Requirement]:
    """Parse `a=b,c!=d,e,!f,g in (x,y)`; raise ValueError on syntax errors."""
    requirements: list[Requirement] = []
    for term in split_terms(selector or ""):
        if match := _SET_TERM.fullmatch(term):
            values = tuple(v.strip() for v in match.group(3).split(",") if v.strip())
            requirements.append(Requirement(match.group(1), match.group(2), values))
        elif match := _EQUALITY_TERM.fullmatch(term):
            op = "!=" if match.group(2) == "!=" else "="
            requirements.append(Requirement(match.group(1), op, (match.group(3),)))
        elif match := _EXISTS_TERM.fullmatch(term):
            requirements.append(Requirement(match.group(2), "!exists" if match.group(1) else "exists"))
        else:
            raise ValueError(f"unable to parse requirement: {term!r}")
    return requirements


def parse_field_selector(selector: str | None) -> list[Requirement]:
    """Parse `metadata.name=x,metadata.namespace!=y` into requirements on dotted paths."""
    requirements: list[Requirement] = []
    for term in split_terms(selector or ""):
        match = _EQUALITY_TERM.fullmatch(term)
        if not match:
            raise ValueError(f"invalid field selector: {term!r}")
        op = "!=" if match.group(2) == "!=" else "="
        requirements.append(Requirement(match.group(1), op, (match.group(3),)))
    return requirements


def field_values(obj: dict[str, Any], requirements: list[Requirement]) -> dict[str, str]:
    """The values of the selected dotted paths, as strings, for matching field requirements."""
    values: dict[str, str] = {}
    for requirement in requirements:
        node: Any = obj
        for part in requirement.key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        values[requirement.key] = "" if node is None else str(node)
    return values


def selects(obj: dict[str, Any], labels: list[Requirement], fields: list[Requirement]) -> bool:
    object_labels = obj.get("metadata", {}).get("labels") or {}
    if not all(requirement.matches(object_labels) for requirement in labels):
        return False
    values = field_values(obj, fields)
    return all(requirement.matches(values) for requirement in fields)


def name_error(plural: str, name: str) -> str | None:
    """The reason a name is invalid for a kind, or None if it is valid."""
    if plural in FREE_NAMED_PLURALS:
        return None if name and "/" not in name and name not in {".", ".."} else "a valid path segment name"
    if plural in LABEL_NAMED_PLURALS:
        ok = len(name) <= 63 and DNS1123_LABEL.fullmatch(name) is not None
        return None if ok else "a lowercase RFC 1123 label (at most 63 characters)"
    ok = len(name) <= 253 and DNS1123_SUBDOMAIN.fullmatch(name) is not None
    return None if ok else "a lowercase RFC 1123 subdomain (at most 253 characters)"


def label_error(key: str, value: Any) -> str | None:
    """The reason a label is invalid, or None if it is valid."""
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not DNS1123_SUBDOMAIN.fullmatch(prefix)):
        return f"invalid label key prefix {prefix!r}"
    if len(name) > 63 or not _QUALIFIED_NAME.fullmatch(name):
        return f"invalid label key {key!r}"
    if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.fullmatch(value):
        return f"invalid label value {value!r} for {key!r}"
    return None
