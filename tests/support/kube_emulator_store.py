"""The object store of the Kubernetes emulator: API-server semantics without HTTP.

Stored bodies are never mutated once stored (every write stores a new dict), so watch events and
readers can share them safely. All public methods are thread-safe (one re-entrant lock).
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import datetime
import random
import string
import threading
import uuid
from collections.abc import Callable
from typing import Any

from tests.support.kube_emulator_fields import Requirement, label_error, name_error, selects
from tests.support.kube_emulator_patches import (
    FieldPath,
    PatchError,
    apply_merge,
    changed_paths,
    field_paths,
    get_path,
    json_patch,
    merge_patch,
    remove_fields,
    strategic_merge,
)
from tests.support.kube_emulator_resources import ResourceRegistry, ResourceType

ObjKey = tuple[str, str, str, str]  # (group, plural, namespace or "", name)
Event = tuple[str, dict[str, Any]]  # (type, object)
NAMESPACES = ("", "namespaces")
CRDS = ("apiextensions.k8s.io", "customresourcedefinitions")
SYSTEM_METADATA = (
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
)


class ApiError(Exception):
    """An API failure, rendered as a `Status` body with the same code."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details or {}

    def status(self) -> dict[str, Any]:
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "details": self.details,
            "code": self.code,
        }


def _details(rtype: ResourceType, name: str) -> dict[str, Any]:
    return {"name": name, "group": rtype.group, "kind": rtype.plural}


def not_found(rtype: ResourceType, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{rtype.group_resource} "{name}" not found', _details(rtype, name))


def conflict(rtype: ResourceType, name: str, why: str) -> ApiError:
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {rtype.group_resource} "{name}": {why}',
        _details(rtype, name),
    )


# Fields a real API server refuses to change after creation (the ones the operator could touch).
IMMUTABLE_FIELDS: dict[str, tuple[tuple[str, ...], ...]] = {
    "StatefulSet": (("spec", "selector"), ("spec", "serviceName"), ("spec", "volumeClaimTemplates")),
    "Deployment": (("spec", "selector"),),
    "Job": (("spec", "selector"), ("spec", "template")),
    "Service": (("spec", "clusterIP"),),
}


def _dig(obj: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        obj = obj.get(key) if isinstance(obj, dict) else None  # type: ignore[assignment]
    return obj


def _shrinks(new: dict[str, Any], old: dict[str, Any]) -> bool:
    from kubernetes.utils import parse_quantity

    path = ("spec", "resources", "requests", "storage")
    before, after = _dig(old, path), _dig(new, path)
    return bool(before and after and parse_quantity(after) < parse_quantity(before))


def invalid(rtype: ResourceType, name: str, why: str) -> ApiError:
    return ApiError(422, "Invalid", f'{rtype.kind} "{name}" is invalid: {why}', _details(rtype, name))


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclasses.dataclass
class Stored:
    body: dict[str, Any]
    rtype: ResourceType
    owners: dict[str, set[FieldPath]] = dataclasses.field(default_factory=dict)  # apply manager -> fields


@dataclasses.dataclass(frozen=True)
class Change:
    rv: int
    type: str
    store_key: tuple[str, str]
    old: dict[str, Any] | None
    new: dict[str, Any]


@dataclasses.dataclass
class WriteResult:
    body: dict[str, Any]
    changed: bool
    created: bool = False
    removed: bool = False  # deleted immediately, not just marked for deletion


@dataclasses.dataclass(eq=False)
class Watcher:
    store_key: tuple[str, str]
    namespace: str | None
    labels: list[Requirement]
    fields: list[Requirement]
    deliver: Callable[[Event], None]

    def selects(self, obj: dict[str, Any] | None) -> bool:
        return obj is not None and _in_selection(obj, self.namespace, self.labels, self.fields)

    def translate(self, change: Change) -> Event | None:
        """The event this watcher sees; objects entering/leaving the selection become ADDED/DELETED."""
        if change.store_key != self.store_key:
            return None
        was, now_ = self.selects(change.old), self.selects(change.new)
        if change.type == "DELETED":
            return ("DELETED", change.new) if was or now_ else None
        if was and now_:
            return ("MODIFIED", change.new)
        if now_:
            return ("ADDED", change.new)
        if not was or change.old is None:
            return None
        # Leaving the selection looks like a deletion of the last matching state, at the new version.
        old = change.old
        return ("DELETED", {**old, "metadata": {**old["metadata"], "resourceVersion": str(change.rv)}})


class ObjectStore:
    def __init__(self, registry: ResourceRegistry, *, event_log_limit: int = 10_000) -> None:
        self.lock = threading.RLock()
        self.registry = registry
        self._objects: dict[ObjKey, Stored] = {}
        # (group, plural) -> namespace -> keys: a LIST reads its kind and namespace only, so a
        # thousand tenants' objects do not make every list scan every object (quadratic).
        self._index: dict[tuple[str, str], dict[str, set[ObjKey]]] = collections.defaultdict(
            lambda: collections.defaultdict(set)
        )
        self._uids: dict[str, ObjKey] = {}
        self._rv = 0
        self._log: collections.deque[Change] = collections.deque(maxlen=event_log_limit)
        self._compacted_rv = 0
        self._watchers: set[Watcher] = set()
        self.hooks: list[Callable[[Change], None]] = []
        for name in ("default", "kube-system"):
            self.create(self._type(NAMESPACES), None, {"metadata": {"name": name}})

    @property
    def resource_version(self) -> int:
        return self._rv

    def _type(self, store_key: tuple[str, str]) -> ResourceType:
        return next(t for t in self.registry.all() if t.store_key == store_key)

    # ---- reading ---------------------------------------------------------------------------------

    def find(self, rtype: ResourceType, namespace: str | None, name: str) -> dict[str, Any] | None:
        with self.lock:
            stored = self._objects.get(self._key(rtype, namespace, name))
            return stored.body if stored else None

    def get(self, rtype: ResourceType, namespace: str | None, name: str) -> dict[str, Any]:
        return self._must(rtype, namespace, name).body

    def select(
        self, rtype: ResourceType, namespace: str | None, labels: list[Requirement], fields: list[Requirement]
    ) -> tuple[list[dict[str, Any]], int]:
        with self.lock:
            by_namespace = self._index.get(rtype.store_key, {})
            if namespace is not None and rtype.namespaced:
                candidates: set[ObjKey] = set(by_namespace.get(namespace, ()))
            else:
                candidates = set().union(*by_namespace.values()) if by_namespace else set()
            bodies = [self._objects[key].body for key in sorted(candidates)]
            return [body for body in bodies if _in_selection(body, namespace, labels, fields)], self._rv

    def _key(self, rtype: ResourceType, namespace: str | None, name: str) -> ObjKey:
        return (rtype.group, rtype.plural, (namespace or "") if rtype.namespaced else "", name)

    def _must(self, rtype: ResourceType, namespace: str | None, name: str) -> Stored:
        with self.lock:
            stored = self._objects.get(self._key(rtype, namespace, name))
            if stored is None:
                raise not_found(rtype, name)
            return stored

    # ---- creating --------------------------------------------------------------------------------

    def create(self, rtype: ResourceType, namespace: str | None, body: Any) -> WriteResult:
        with self.lock:
            obj = self._fresh_object(rtype, namespace, body)
            meta = obj["metadata"]
            key = self._key(rtype, meta.get("namespace"), meta["name"])
            if key in self._objects:
                raise ApiError(
                    409,
                    "AlreadyExists",
                    f'{rtype.group_resource} "{meta["name"]}" already exists',
                    _details(rtype, meta["name"]),
                )
            self._on_create(rtype, obj)
            stored = Stored(obj, rtype)
            self._objects[key] = stored
            self._index[key[:2]][key[2]].add(key)
            self._uids[meta["uid"]] = key
            self._commit(key, None, obj)
            return WriteResult(stored.body, changed=True, created=True)

    def _fresh_object(self, rtype: ResourceType, namespace: str | None, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("metadata", {}), dict):
            raise ApiError(400, "BadRequest", "the request body is not a Kubernetes object")
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        if meta.get("resourceVersion"):
            raise ApiError(400, "BadRequest", "resourceVersion should not be set on objects to be created")
        for field in SYSTEM_METADATA[2:]:
            meta.pop(field, None)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + "".join(random.choices(string.ascii_lowercase + "2456789", k=5))
        name = meta.get("name") or ""
        if not name:
            raise invalid(rtype, "", "metadata.name: Required value: name or generateName is required")
        if reason := name_error(rtype.plural, name):
            raise invalid(rtype, name, f"metadata.name: Invalid value: {name!r}: must be {reason}")
        self._place(rtype, namespace, meta)
        if rtype.has_status:
            obj.pop("status", None)
        obj["apiVersion"], obj["kind"] = rtype.api_version, rtype.kind
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=now(), generation=1)
        self._validate(rtype, obj, None)
        return obj

    def _place(self, rtype: ResourceType, namespace: str | None, meta: dict[str, Any]) -> None:
        """Put the object in its namespace: as in the URL, which must exist and not be terminating."""
        if not rtype.namespaced:
            meta.pop("namespace", None)
            return
        if meta.get("namespace") and namespace and meta["namespace"] != namespace:
            raise ApiError(
                400,
                "BadRequest",
                "the namespace of the provided object does not match the namespace sent on the request",
            )
        meta["namespace"] = namespace or meta.get("namespace") or ""
        namespace_obj = self._objects.get(("", "namespaces", "", meta["namespace"]))
        if namespace_obj is None:
            raise not_found(self._type(NAMESPACES), meta["namespace"])
        if namespace_obj.body["metadata"].get("deletionTimestamp"):
            raise ApiError(
                403,
                "Forbidden",
                f'{rtype.plural} "{meta["name"]}" is forbidden: unable to create new '
                f"content in namespace {meta['namespace']} because it is being terminated",
            )

    def _on_create(self, rtype: ResourceType, obj: dict[str, Any]) -> None:
        if rtype.store_key == NAMESPACES:
            obj["spec"] = {"finalizers": ["kubernetes"]}
            obj["status"] = {"phase": "Active"}
        elif rtype.store_key == CRDS:
            self._check_crd(rtype, obj)
            names = obj.get("spec", {}).get("names", {})
            stored = [v["name"] for v in obj.get("spec", {}).get("versions", []) if v.get("storage")]
            conditions = [
                {"type": t, "status": "True", "lastTransitionTime": now()} for t in ("NamesAccepted", "Established")
            ]
            obj["status"] = {"acceptedNames": names, "conditions": conditions, "storedVersions": stored}

    def _check_crd(self, rtype: ResourceType, obj: dict[str, Any]) -> None:
        spec = obj.get("spec", {})
        expected = f"{spec.get('names', {}).get('plural')}.{spec.get('group')}"
        if obj["metadata"]["name"] != expected:
            raise invalid(rtype, obj["metadata"]["name"], f"metadata.name: Invalid value: must be {expected!r}")

    # ---- updating --------------------------------------------------------------------------------

    def replace(
        self, rtype: ResourceType, namespace: str | None, name: str, body: Any, subresource: str = ""
    ) -> WriteResult:
        with self.lock:
            stored = self._must(rtype, namespace, name)
            if not isinstance(body, dict) or body.get("metadata", {}).get("name", name) != name:
                raise ApiError(400, "BadRequest", f"the name of the object does not match the name on the URL ({name})")
            return self._update(stored, body, subresource)

    def patch(
        self,
        rtype: ResourceType,
        namespace: str | None,
        name: str,
        patch_type: str,
        patch: Any,
        *,
        subresource: str = "",
        manager: str | None = None,
        force: bool = False,
    ) -> WriteResult:
        with self.lock:
            if patch_type == "apply":
                return self._apply(rtype, namespace, name, patch, subresource, manager, force)
            stored = self._must(rtype, namespace, name)
            return self._update(stored, self._patched(rtype, stored.body, patch_type, patch), subresource)

    def _patched(self, rtype: ResourceType, base: dict[str, Any], patch_type: str, patch: Any) -> dict[str, Any]:
        name = base["metadata"]["name"]
        if patch_type == "json" and not isinstance(patch, list):
            raise ApiError(400, "BadRequest", "a JSON patch must be a list of operations")
        if patch_type != "json" and not isinstance(patch, dict):
            raise ApiError(400, "BadRequest", "a merge patch must be a JSON object")
        if patch_type == "strategic" and rtype.custom:
            raise ApiError(415, "UnsupportedMediaType", "strategic merge patch is not supported for custom resources")
        try:
            if patch_type == "json":
                return json_patch(base, patch)
            patched: dict[str, Any] = (
                strategic_merge(base, patch) if patch_type == "strategic" else merge_patch(base, patch)
            )
            return patched
        except PatchError as e:
            raise ApiError(422, "Invalid", str(e), _details(rtype, name)) from e

    def _update(
        self, stored: Stored, candidate: dict[str, Any], subresource: str, apply_manager: str | None = None
    ) -> WriteResult:
        rtype, old = stored.rtype, stored.body
        if subresource and (subresource != "status" or not rtype.has_status):
            raise not_found(rtype, old["metadata"]["name"])
        self._check_preconditions(rtype, old, candidate)
        new = self._reconcile(rtype, old, candidate, subresource)
        self._validate(rtype, new, old)
        if new == old:
            return WriteResult(old, changed=False)  # a real server does not write a no-op update either
        if _spec_of(rtype, new) != _spec_of(rtype, old):
            new["metadata"]["generation"] = old["metadata"].get("generation", 1) + 1
        if stored.owners and apply_manager is None:  # an ordinary write takes ownership of what it changed
            touched = changed_paths(old, new)
            for owned in stored.owners.values():
                owned -= touched
        key = self._key(rtype, old["metadata"].get("namespace"), old["metadata"]["name"])
        if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
            # Like a real server, the emptying update is not stored: the stored object is deleted instead.
            return WriteResult(self._remove(key, old, "Background"), changed=True, removed=True)
        stored.body = new
        self._commit(key, old, new)
        if rtype.store_key == CRDS:
            self.registry.register_crd(new)
        return WriteResult(new, changed=True)

    def _check_preconditions(self, rtype: ResourceType, old: dict[str, Any], candidate: dict[str, Any]) -> None:
        meta, name = candidate.get("metadata") or {}, old["metadata"]["name"]
        if meta.get("resourceVersion") not in (None, "", old["metadata"]["resourceVersion"]):
            raise conflict(
                rtype,
                name,
                "the object has been modified; please apply your changes to the latest version and try again",
            )
        if meta.get("uid") not in (None, "", old["metadata"]["uid"]):
            raise conflict(
                rtype,
                name,
                f"Precondition failed: UID in precondition: {meta['uid']}, "
                f"UID in object meta: {old['metadata']['uid']}",
            )

    def _reconcile(
        self, rtype: ResourceType, old: dict[str, Any], candidate: dict[str, Any], subresource: str
    ) -> dict[str, Any]:
        """Keep what a write cannot change: system metadata, and status or everything-but-status."""
        if subresource == "status":
            new = {k: v for k, v in old.items() if k != "status"}
            if "status" in candidate:
                new["status"] = copy.deepcopy(candidate["status"])
            return copy.deepcopy(new)
        new = copy.deepcopy(candidate)
        if not isinstance(new.get("metadata", {}), dict):
            raise invalid(rtype, old["metadata"]["name"], "metadata: must be an object")
        new["apiVersion"], new["kind"] = old["apiVersion"], old["kind"]
        meta = new.setdefault("metadata", {})
        meta.pop("managedFields", None)
        for field in SYSTEM_METADATA:
            if field in old["metadata"]:
                meta[field] = old["metadata"][field]
            else:
                meta.pop(field, None)
        if rtype.has_status:
            new.pop("status", None)
            if "status" in old:
                new["status"] = copy.deepcopy(old["status"])
        return new

    def _validate(self, rtype: ResourceType, new: dict[str, Any], old: dict[str, Any] | None) -> None:
        name = new["metadata"]["name"]
        labels = new["metadata"].get("labels") or {}
        if not isinstance(labels, dict):
            raise invalid(rtype, name, "metadata.labels: must be a map of strings")
        for key, value in labels.items():
            if reason := label_error(key, value):
                raise invalid(rtype, name, f"metadata.labels: Invalid value: {reason}")
        if old is not None:
            for path in IMMUTABLE_FIELDS.get(rtype.kind, ()):
                if _dig(new, path) != _dig(old, path):
                    raise invalid(rtype, name, f"{'.'.join(path)}: Forbidden: field is immutable")
            if rtype.kind == "PersistentVolumeClaim" and _shrinks(new, old):
                raise invalid(
                    rtype, name, "spec.resources.requests.storage: Forbidden: field can not be less than previous value"
                )
        if old and old["metadata"].get("deletionTimestamp"):
            added = set(new["metadata"].get("finalizers") or []) - set(old["metadata"].get("finalizers") or [])
            if added:
                raise invalid(
                    rtype,
                    name,
                    "metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted",
                )

    # ---- server-side apply -----------------------------------------------------------------------

    def _apply(
        self,
        rtype: ResourceType,
        namespace: str | None,
        name: str,
        body: Any,
        subresource: str,
        manager: str | None,
        force: bool,
    ) -> WriteResult:
        if not manager:
            raise ApiError(400, "BadRequest", "PATCH /apply requires fieldManager")
        applied = self._applied_config(rtype, name, body, subresource)
        fields = field_paths(applied)
        if rtype.has_status:  # the main resource and /status own disjoint parts of the object
            fields = {p for p in fields if (p[0] == "status") == (subresource == "status")}
        stored = self._objects.get(self._key(rtype, namespace, name))
        if stored is None:
            if subresource:
                raise not_found(rtype, name)
            applied["metadata"].pop("resourceVersion", None)
            result = self.create(rtype, namespace, applied)
            self._objects[self._key(rtype, namespace, name)].owners[manager] = fields
            return result
        old = stored.body
        self._check_preconditions(rtype, old, applied)
        clashes = {
            m: {p for p in owned & fields if get_path(old, p) != get_path(applied, p)}
            for m, owned in stored.owners.items()
            if m != manager
        }
        described = sorted(f"{m}: .{'.'.join(map(str, p))}" for m, paths in clashes.items() for p in paths)
        if described and not force:
            raise conflict(rtype, name, f"Apply failed with {len(described)} conflicts: {'; '.join(described)}")
        others = set().union(*(owned - clashes[m] for m, owned in stored.owners.items() if m != manager))
        stale = stored.owners.get(manager, set()) - fields - others
        candidate = apply_merge(remove_fields(old, stale, fields | others), applied)
        result = self._update(stored, candidate, subresource, apply_manager=manager)
        for other, paths in clashes.items():  # forced: the conflicting fields change hands
            stored.owners[other] -= paths
        stored.owners[manager] = fields
        return result

    def _applied_config(self, rtype: ResourceType, name: str, body: Any, subresource: str) -> dict[str, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("metadata", {}), dict):
            raise ApiError(400, "BadRequest", "the applied configuration is not a Kubernetes object")
        if body.get("kind") != rtype.kind or body.get("apiVersion") != rtype.api_version:
            raise ApiError(400, "BadRequest", f"apply needs apiVersion {rtype.api_version} and kind {rtype.kind}")
        if body.get("metadata", {}).get("name", name) != name:
            raise ApiError(400, "BadRequest", f"the name of the object does not match the name on the URL ({name})")
        applied = copy.deepcopy(body)
        applied.setdefault("metadata", {})["name"] = name
        return applied

    # ---- deleting --------------------------------------------------------------------------------

    def delete(
        self,
        rtype: ResourceType,
        namespace: str | None,
        name: str,
        propagation: str | None = None,
        preconditions: dict[str, Any] | None = None,
    ) -> WriteResult:
        with self.lock:
            stored = self._must(rtype, namespace, name)
            self._check_preconditions(rtype, stored.body, {"metadata": preconditions or {}})
            return self._delete_key(self._key(rtype, namespace, name), propagation or "Background")

    def _delete_key(self, key: ObjKey, propagation: str) -> WriteResult:
        stored = self._objects[key]
        old = stored.body
        meta = old["metadata"]
        if meta.get("deletionTimestamp"):
            return WriteResult(old, changed=False)
        if propagation == "Foreground":  # dependents first, then the owner (no foregroundDeletion finalizer)
            self._collect_garbage(old, "Background")
        if not meta.get("finalizers") and key[:2] != NAMESPACES:
            return WriteResult(self._remove(key, old, propagation), changed=True, removed=True)
        new = copy.deepcopy(old)
        new["metadata"].update(deletionTimestamp=now(), deletionGracePeriodSeconds=0)
        if key[:2] == NAMESPACES:
            new["status"] = {"phase": "Terminating"}
        stored.body = new
        self._commit(key, old, new)
        if key[:2] == NAMESPACES:
            self._empty_namespace(key[3])
        return WriteResult(self._objects[key].body if key in self._objects else new, changed=True)

    def _remove(self, key: ObjKey, body: dict[str, Any], propagation: str) -> dict[str, Any]:
        final = {**body, "metadata": dict(body["metadata"])}
        del self._objects[key]
        self._index[key[:2]][key[2]].discard(key)
        self._uids.pop(final["metadata"]["uid"], None)
        self._rv += 1
        final["metadata"]["resourceVersion"] = str(self._rv)
        self._record(Change(self._rv, "DELETED", key[:2], body, final))
        self._collect_garbage(final, propagation)
        if key[:2] == CRDS:
            self._drop_custom_resources(final)
        if key[2]:
            self._finish_namespace(key[2])
        return final

    def _collect_garbage(self, owner: dict[str, Any], propagation: str) -> None:
        """Delete (or, with Orphan or other live owners, detach) every dependent of the owner."""
        uid = owner["metadata"]["uid"]
        for key in [k for k, s in self._objects.items() if _owned_by(s.body, uid)]:
            stored = self._objects.get(key)
            if stored is None or not _owned_by(stored.body, uid):
                continue
            refs = stored.body["metadata"]["ownerReferences"]
            remaining = [ref for ref in refs if ref.get("uid") != uid]
            if propagation == "Orphan" or any(ref.get("uid") in self._uids for ref in remaining):
                detached = copy.deepcopy(stored.body)
                detached["metadata"]["ownerReferences"] = remaining
                self._update(stored, detached, "")
            else:
                self._delete_key(key, "Background")

    def _empty_namespace(self, namespace: str) -> None:
        for key in [k for k in self._objects if k[2] == namespace]:
            if key in self._objects:
                self._delete_key(key, "Background")
        self._finish_namespace(namespace)

    def _finish_namespace(self, namespace: str) -> None:
        key: ObjKey = ("", "namespaces", "", namespace)
        stored = self._objects.get(key)
        if stored is None or not stored.body["metadata"].get("deletionTimestamp"):
            return
        if stored.body["metadata"].get("finalizers") or any(k[2] == namespace for k in self._objects):
            return
        self._remove(key, stored.body, "Background")

    def _drop_custom_resources(self, crd: dict[str, Any]) -> None:
        spec = crd.get("spec", {})
        store_key = (spec.get("group", ""), spec.get("names", {}).get("plural", ""))
        for key in [k for k in self._objects if k[:2] == store_key]:
            if key in self._objects:
                self._remove(key, self._objects[key].body, "Background")
        self.registry.unregister_crd(crd)

    # ---- committing & watching -------------------------------------------------------------------

    def _commit(self, key: ObjKey, old: dict[str, Any] | None, new: dict[str, Any]) -> None:
        self._rv += 1
        new["metadata"]["resourceVersion"] = str(self._rv)
        if key[:2] == CRDS and old is None:
            self.registry.register_crd(new)
        self._record(Change(self._rv, "ADDED" if old is None else "MODIFIED", key[:2], old, new))

    def _record(self, change: Change) -> None:
        if self._log.maxlen is not None and len(self._log) == self._log.maxlen:
            self._compacted_rv = self._log[0].rv
        self._log.append(change)
        for watcher in list(self._watchers):
            if event := watcher.translate(change):
                watcher.deliver(event)
        for hook in self.hooks:
            hook(change)

    def compact(self) -> None:
        """Forget the event log, as etcd compaction does: older watches then get 410 Gone."""
        with self.lock:
            self._log.clear()
            self._compacted_rv = self._rv

    def subscribe(
        self,
        rtype: ResourceType,
        namespace: str | None,
        labels: list[Requirement],
        fields: list[Requirement],
        since: str | None,
        deliver: Callable[[Event], None],
    ) -> tuple[list[Event], Watcher]:
        """Register a watcher; return the events it must see first (initial ADDED or a replay)."""
        with self.lock:
            watcher = Watcher(rtype.store_key, namespace, labels, fields, deliver)
            if since in (None, "", "0"):
                initial = [("ADDED", body) for body in self.select(rtype, namespace, labels, fields)[0]]
            else:
                initial = self._replay(watcher, rtype, since or "")
            self._watchers.add(watcher)
            return initial, watcher

    def _replay(self, watcher: Watcher, rtype: ResourceType, since: str) -> list[Event]:
        if not since.isdigit():
            raise ApiError(400, "BadRequest", f"invalid resource version: {since!r}")
        if int(since) < self._compacted_rv:
            raise ApiError(410, "Expired", f"too old resource version: {since} ({self._compacted_rv + 1})")
        events = [watcher.translate(change) for change in self._log if change.rv > int(since)]
        return [event for event in events if event]

    def unsubscribe(self, watcher: Watcher) -> None:
        with self.lock:
            self._watchers.discard(watcher)


def _spec_of(rtype: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    """The part of an object whose changes bump metadata.generation."""
    skipped = {"metadata", "apiVersion", "kind"} | ({"status"} if rtype.has_status else set())
    return {k: v for k, v in obj.items() if k not in skipped}


def _in_selection(
    obj: dict[str, Any], namespace: str | None, labels: list[Requirement], fields: list[Requirement]
) -> bool:
    namespace_ok = namespace is None or obj["metadata"].get("namespace") == namespace
    return namespace_ok and selects(obj, labels, fields)


def _owned_by(body: dict[str, Any], uid: str) -> bool:
    return any(ref.get("uid") == uid for ref in body["metadata"].get("ownerReferences") or [])
