"""The REST surface of the Kubernetes emulator: URL routing, discovery and request-to-store dispatch.

No networking here: `RestApi.execute` turns (method, route, query, body) into (status, payload, changed).
Watch streaming, faults and hosting live in `kube_emulator`.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from typing import Any

import yaml

from tests.support.kube_emulator_fields import Requirement, parse_field_selector, parse_label_selector
from tests.support.kube_emulator_resources import ResourceRegistry, ResourceType
from tests.support.kube_emulator_store import ApiError, ObjectStore, WriteResult

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PATCH_TYPES = {
    "application/json-patch+json": "json",
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
    "application/apply-patch+json": "apply",
}
REASONS = {
    400: "BadRequest",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    410: "Expired",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
}
VERSION = {
    "major": "1",
    "minor": "33",
    "gitVersion": "v1.33.0-kube-emulator",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2025-01-01T00:00:00Z",
    "goVersion": "go1.24.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}
NOT_FOUND = ApiError(404, "NotFound", "the server could not find the requested resource")
NOT_ALLOWED = ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
SUCCESS = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}


@dataclasses.dataclass(frozen=True)
class Route:
    group: str
    version: str
    plural: str
    namespace: str | None
    name: str | None
    subresource: str
    legacy_watch: bool  # the deprecated /api/v1/watch/... form

    def is_watch(self, method: str, query: Any) -> bool:
        return method == "GET" and (self.legacy_watch or query.get("watch") in ("true", "1"))


def parse_route(path: str) -> Route | None:
    """Split a resource URL; None for discovery and other non-resource URLs."""
    parts = [part for part in path.split("/") if part]
    if parts[:1] == ["api"] and len(parts) >= 3:
        group, version, rest = "", parts[1], parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 4:
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    legacy_watch = rest[0] == "watch"
    rest = rest[1:] if legacy_watch else rest
    namespace = None
    # /api/v1/namespaces/NAME/status is the namespace's own subresource, not a namespaced collection.
    if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] not in ("status", "finalize"):
        namespace, rest = rest[1], rest[2:]
    if not rest:
        return None
    name = rest[1] if len(rest) > 1 else None
    return Route(group, version, rest[0], namespace, name, "/".join(rest[2:]), legacy_watch)


def decode_body(body: bytes, content_type: str) -> Any:
    """JSON, or YAML for YAML content types (apply bodies may be either)."""
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        if "yaml" not in content_type:
            raise ApiError(400, "BadRequest", "the request body is not valid JSON") from None
    try:
        return yaml.safe_load(body)
    except yaml.YAMLError as e:
        raise ApiError(400, "BadRequest", f"the request body is not valid YAML: {e}") from e


def present(rtype: ResourceType, body: dict[str, Any]) -> dict[str, Any]:
    """An object as served in the requested version (custom resources are not converted otherwise)."""
    return {**body, "apiVersion": rtype.api_version}


def selectors(query: Any, name: str | None = None) -> tuple[list[Requirement], list[Requirement]]:
    """Label and field requirements of a list/watch query (a named watch selects by name)."""
    try:
        labels = parse_label_selector(query.get("labelSelector"))
        fields = parse_field_selector(query.get("fieldSelector"))
    except ValueError as e:
        raise ApiError(400, "BadRequest", str(e)) from e
    if name:
        fields.append(Requirement("metadata.name", "=", (name,)))
    return labels, fields


def initial_events_end(rtype: ResourceType, rv: int) -> dict[str, Any]:
    """The bookmark that ends the initial events of a `sendInitialEvents=true` watch."""
    meta = {"resourceVersion": str(rv), "annotations": {"k8s.io/initial-events-end": "true"}}
    return {"type": "BOOKMARK", "object": {"kind": rtype.kind, "apiVersion": rtype.api_version, "metadata": meta}}


class RestApi:
    """Maps API requests onto the object store and the discovery documents."""

    def __init__(self, store: ObjectStore, registry: ResourceRegistry) -> None:
        self._store = store
        self._registry = registry

    def discovery(self, path: str) -> dict[str, Any]:
        parts = [part for part in path.split("/") if part]
        document: dict[str, Any] | None = None
        if parts == ["version"]:
            document = VERSION
        elif parts == ["api"]:
            document = {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
        elif parts == ["apis"]:
            document = self._registry.api_group_list()
        elif parts[:1] == ["api"] and len(parts) == 2:
            document = self._registry.api_resource_list("", parts[1])
        elif parts[:1] == ["apis"] and len(parts) == 2:
            document = self._registry.api_group(parts[1])
        elif parts[:1] == ["apis"] and len(parts) == 3:
            document = self._registry.api_resource_list(parts[1], parts[2])
        if document is None:
            raise NOT_FOUND
        return document

    def route_type(self, route: Route) -> ResourceType:
        rtype = self._registry.lookup(route.group, route.version, route.plural)
        if rtype is None or (route.namespace and not rtype.namespaced):
            raise NOT_FOUND
        if route.subresource not in ("", "status") or (route.subresource and not rtype.has_status):
            raise NOT_FOUND
        if route.name and rtype.namespaced and not route.namespace:
            raise NOT_FOUND
        return rtype

    def execute(
        self, method: str, route: Route, query: dict[str, str], content_type: str, raw_body: bytes
    ) -> tuple[int, Any, bool]:
        """Serve a non-watch request: (HTTP status, JSON payload, whether stored state changed)."""
        rtype = self.route_type(route)
        body = decode_body(raw_body, content_type)
        if route.name is None:
            return self._collection(method, rtype, route.namespace, query, body)
        namespace, name, subresource = route.namespace, route.name, route.subresource
        result: WriteResult
        if method == "GET":
            return 200, present(rtype, self._store.get(rtype, namespace, name)), False
        if method == "PUT":
            result = self._store.replace(rtype, namespace, name, body, subresource)
        elif method == "PATCH":
            patch_type = PATCH_TYPES.get(content_type)
            if patch_type is None:
                raise ApiError(415, "UnsupportedMediaType", f"unknown patch format: {content_type}")
            manager, force = query.get("fieldManager"), query.get("force") == "true"
            result = self._store.patch(
                rtype, namespace, name, patch_type, body, subresource=subresource, manager=manager, force=force
            )
        elif method == "DELETE":
            return self._delete(rtype, namespace, name, query, body or {})
        else:
            raise NOT_ALLOWED
        return (201 if result.created else 200), present(rtype, result.body), result.changed

    def _collection(
        self, method: str, rtype: ResourceType, namespace: str | None, query: dict[str, str], body: Any
    ) -> tuple[int, Any, bool]:
        if method == "GET":
            return 200, self._list(rtype, namespace, query), False
        if method == "POST" and (namespace or not rtype.namespaced):
            return 201, present(rtype, self._store.create(rtype, namespace, body).body), True
        if method == "DELETE":
            changed = False
            for item in self._store.select(rtype, namespace, *selectors(query))[0]:
                meta = item["metadata"]
                changed |= self._store.delete(rtype, meta.get("namespace"), meta["name"]).changed
            return 200, SUCCESS, changed
        raise NOT_ALLOWED

    def _delete(
        self, rtype: ResourceType, namespace: str | None, name: str, query: dict[str, str], options: dict[str, Any]
    ) -> tuple[int, Any, bool]:
        propagation = query.get("propagationPolicy") or options.get("propagationPolicy")
        if "true" in (query.get("orphanDependents"), str(options.get("orphanDependents")).lower()):
            propagation = "Orphan"
        result = self._store.delete(rtype, namespace, name, propagation, options.get("preconditions"))
        if not result.removed:  # still there, being finalized: the object is returned
            return 200, present(rtype, result.body), result.changed
        details = {"name": name, "group": rtype.group, "kind": rtype.plural, "uid": result.body["metadata"]["uid"]}
        return 200, {**SUCCESS, "details": details}, result.changed

    def _list(self, rtype: ResourceType, namespace: str | None, query: dict[str, str]) -> dict[str, Any]:
        items, rv = self._store.select(rtype, namespace, *selectors(query))
        start = _continue_offset(query.get("continue"))
        limit = int(query.get("limit") or 0)
        page = items[start : start + limit] if limit else items[start:]
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        if limit and start + limit < len(items):
            meta["continue"] = base64.urlsafe_b64encode(json.dumps({"offset": start + limit}).encode()).decode()
            meta["remainingItemCount"] = len(items) - start - limit
        # Like a real server, items of built-in lists carry no apiVersion/kind; custom resources do.
        served = [present(rtype, body) if rtype.custom else _strip_type(body) for body in page]
        return {"kind": f"{rtype.kind}List", "apiVersion": rtype.api_version, "metadata": meta, "items": served}


def _continue_offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        return int(json.loads(base64.urlsafe_b64decode(token))["offset"])
    except (ValueError, KeyError, TypeError) as e:
        raise ApiError(400, "BadRequest", "invalid continue token") from e


def _strip_type(body: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in body.items() if key not in ("apiVersion", "kind")}
