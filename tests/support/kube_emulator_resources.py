"""Resource types known to the Kubernetes emulator and the discovery documents built from them."""

from __future__ import annotations

import dataclasses
import re
import threading
from collections.abc import Iterable
from typing import Any

_VERSION = re.compile(r"v(\d+)(?:(alpha|beta)(\d+))?")
ALL_VERBS: tuple[str, ...] = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
STATUS_VERBS: tuple[str, ...] = ("get", "patch", "update")


@dataclasses.dataclass(frozen=True)
class ResourceType:
    """One served resource in one group-version, as discovery describes it."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    has_status: bool = False
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    singular: str = ""
    custom: bool = False  # registered from a CustomResourceDefinition

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        """The `plural.group` spelling the API server uses in error messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def store_key(self) -> tuple[str, str]:
        """Objects are stored per group and plural, shared by all versions of a resource."""
        return (self.group, self.plural)

    def matches_name(self, name: str) -> bool:
        lowered = name.lower()
        return lowered in {self.plural, self.kind.lower(), self.singular or self.kind.lower()} or (
            lowered in self.short_names
        )


def _core(plural: str, kind: str, namespaced: bool = True, status: bool = False, *short: str) -> ResourceType:
    return ResourceType("", "v1", plural, kind, namespaced, status, short, singular=kind.lower())


def _grouped(gv: str, plural: str, kind: str, status: bool = False, *short: str) -> ResourceType:
    group, version = gv.split("/")
    return ResourceType(group, version, plural, kind, True, status, short, singular=kind.lower())


BUILTIN_RESOURCES: tuple[ResourceType, ...] = (
    _core("namespaces", "Namespace", False, True, "ns"),
    _core("secrets", "Secret"),
    _core("configmaps", "ConfigMap", True, False, "cm"),
    _core("services", "Service", True, True, "svc"),
    _core("serviceaccounts", "ServiceAccount", True, False, "sa"),
    _core("persistentvolumeclaims", "PersistentVolumeClaim", True, True, "pvc"),
    _core("resourcequotas", "ResourceQuota", True, True, "quota"),
    _core("limitranges", "LimitRange", True, False, "limits"),
    _core("events", "Event", True, False, "ev"),
    _core("pods", "Pod", True, True, "po"),
    _grouped("apps/v1", "deployments", "Deployment", True, "deploy"),
    _grouped("apps/v1", "statefulsets", "StatefulSet", True, "sts"),
    _grouped("batch/v1", "jobs", "Job", True),
    _grouped("networking.k8s.io/v1", "networkpolicies", "NetworkPolicy", False, "netpol"),
    _grouped("networking.k8s.io/v1", "ingresses", "Ingress", True, "ing"),
    _grouped("policy/v1", "poddisruptionbudgets", "PodDisruptionBudget", True, "pdb"),
    _grouped("coordination.k8s.io/v1", "leases", "Lease"),
    _grouped("events.k8s.io/v1", "events", "Event", False, "ev"),
    _grouped("rbac.authorization.k8s.io/v1", "roles", "Role"),
    _grouped("rbac.authorization.k8s.io/v1", "rolebindings", "RoleBinding"),
    dataclasses.replace(_grouped("rbac.authorization.k8s.io/v1", "clusterroles", "ClusterRole"), namespaced=False),
    dataclasses.replace(
        _grouped("rbac.authorization.k8s.io/v1", "clusterrolebindings", "ClusterRoleBinding"), namespaced=False
    ),
    dataclasses.replace(
        _grouped("apiextensions.k8s.io/v1", "customresourcedefinitions", "CustomResourceDefinition", True),
        namespaced=False,
        short_names=("crd", "crds"),
    ),
)


def crd_resource_types(crd: dict[str, Any]) -> list[ResourceType]:
    """The resource types (one per served version) that a CustomResourceDefinition declares."""
    spec = crd.get("spec", {})
    names = spec.get("names", {})
    kind = names.get("kind", "")
    return [
        ResourceType(
            group=spec.get("group", ""),
            version=version["name"],
            plural=names.get("plural", ""),
            kind=kind,
            namespaced=spec.get("scope", "Namespaced") == "Namespaced",
            has_status="status" in (version.get("subresources") or {}),
            short_names=tuple(names.get("shortNames") or ()),
            categories=tuple(names.get("categories") or ()),
            singular=names.get("singular") or kind.lower(),
            custom=True,
        )
        for version in spec.get("versions", [])
        if version.get("served", True)
    ]


class ResourceRegistry:
    """Thread-safe table of served resource types, keyed by (group, version, plural)."""

    def __init__(self, types: Iterable[ResourceType] = BUILTIN_RESOURCES) -> None:
        self._lock = threading.Lock()
        self._types: dict[tuple[str, str, str], ResourceType] = {}
        for rtype in types:
            self._types[(rtype.group, rtype.version, rtype.plural)] = rtype

    def all(self) -> list[ResourceType]:
        with self._lock:
            return list(self._types.values())

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        with self._lock:
            return self._types.get((group, version, plural))

    def resolve(self, api_version: str, kind_or_plural: str) -> ResourceType | None:
        """Find a type by apiVersion and any of its names (plural, kind, singular, short name)."""
        group, _, version = api_version.rpartition("/")
        candidates = [t for t in self.all() if t.group == group and t.version == version]
        exact = [t for t in candidates if t.plural == kind_or_plural or t.kind == kind_or_plural]
        loose = [t for t in candidates if t.matches_name(kind_or_plural)]
        found = exact or loose
        return found[0] if found else None

    def register_crd(self, crd: dict[str, Any]) -> list[ResourceType]:
        types = crd_resource_types(crd)
        with self._lock:
            if types:
                self._forget(types[0].group, types[0].plural)
            for rtype in types:
                self._types[(rtype.group, rtype.version, rtype.plural)] = rtype
        return types

    def unregister_crd(self, crd: dict[str, Any]) -> None:
        spec = crd.get("spec", {})
        with self._lock:
            self._forget(spec.get("group", ""), spec.get("names", {}).get("plural", ""))

    def _forget(self, group: str, plural: str) -> None:
        for key in [k for k, t in self._types.items() if t.custom and (t.group, t.plural) == (group, plural)]:
            del self._types[key]

    # Discovery documents, in the shapes kopf and the `kubernetes` client read.

    def group_versions(self) -> dict[str, list[str]]:
        """Served versions per group, the preferred (most stable, newest) first."""
        result: dict[str, list[str]] = {}
        for rtype in sorted(self.all(), key=lambda t: (t.group, version_priority(t.version))):
            versions = result.setdefault(rtype.group, [])
            if rtype.version not in versions:
                versions.append(rtype.version)
        return result

    def api_group(self, group: str) -> dict[str, Any] | None:
        versions = self.group_versions().get(group)
        if not versions or not group:
            return None
        entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {
            "kind": "APIGroup",
            "apiVersion": "v1",
            "name": group,
            "versions": entries,
            "preferredVersion": entries[0],
        }

    def api_group_list(self) -> dict[str, Any]:
        groups = [self.api_group(group) for group in self.group_versions() if group]
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [g for g in groups if g]}

    def api_resource_list(self, group: str, version: str) -> dict[str, Any] | None:
        types = [t for t in self.all() if (t.group, t.version) == (group, version)]
        if not types:
            return None
        resources: list[dict[str, Any]] = []
        for rtype in sorted(types, key=lambda t: t.plural):
            resources.append(_describe(rtype))
            if rtype.has_status:
                resources.append(_describe(rtype, subresource="status"))
        group_version = f"{group}/{version}" if group else version
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Sort key in Kubernetes version priority: GA before beta before alpha, newer first."""
    match = _VERSION.fullmatch(version)
    if not match:
        return (3, 0, 0, version)
    stability = {"alpha": 2, "beta": 1}.get(match.group(2) or "", 0)
    return (stability, -int(match.group(1)), -int(match.group(3) or 0), version)


def _describe(rtype: ResourceType, subresource: str = "") -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": f"{rtype.plural}/{subresource}" if subresource else rtype.plural,
        "singularName": "" if subresource else rtype.singular,
        "namespaced": rtype.namespaced,
        "kind": rtype.kind,
        "verbs": list(STATUS_VERBS if subresource else ALL_VERBS),
    }
    if rtype.short_names and not subresource:
        entry["shortNames"] = list(rtype.short_names)
    if rtype.categories and not subresource:
        entry["categories"] = list(rtype.categories)
    return entry
