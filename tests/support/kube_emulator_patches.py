"""Patch algorithms of the Kubernetes emulator: JSON patch, merge patch, strategic merge, apply field sets.

All functions are pure: they never mutate their inputs and return new documents.
"""

from __future__ import annotations

import copy
from typing import Any

# A field path: map keys are strings; ("k", key_field, key_value) is an item of a keyed list;
# ("v", value) is an element of a set-like list of scalars.
PathElem = str | tuple[Any, ...]
FieldPath = tuple[PathElem, ...]

# Merge keys of well-known keyed lists (the API server takes them from its schemas).
LIST_MAP_KEYS: dict[str, tuple[str, ...]] = {
    "containers": ("name",),
    "initContainers": ("name",),
    "ephemeralContainers": ("name",),
    "volumes": ("name",),
    "env": ("name",),
    "imagePullSecrets": ("name",),
    "volumeMounts": ("mountPath",),
    "volumeDevices": ("devicePath",),
    "ownerReferences": ("uid",),
    "conditions": ("type",),
    "hostAliases": ("ip",),
    "ports": ("containerPort", "port"),
}
SET_LISTS: frozenset[str] = frozenset({"finalizers"})

# Fields that identify an object or belong to the server; apply never owns or removes them.
IDENTITY_PATHS: frozenset[FieldPath] = frozenset(
    {
        ("apiVersion",),
        ("kind",),
        ("metadata", "name"),
        ("metadata", "namespace"),
        ("metadata", "uid"),
        ("metadata", "resourceVersion"),
        ("metadata", "generation"),
        ("metadata", "creationTimestamp"),
        ("metadata", "deletionTimestamp"),
        ("metadata", "deletionGracePeriodSeconds"),
        ("metadata", "managedFields"),
    }
)


class PatchError(ValueError):
    """A patch that cannot be applied (422 Unprocessable Entity on a real server)."""


class PatchTestFailed(PatchError):
    """A JSON-patch `test` operation did not match."""


# ---- list strategies ----------------------------------------------------------------------------


def list_strategy(field: str, items: list[Any]) -> tuple[str, str]:
    """("map", key) for keyed lists, ("set", "") for sets of scalars, ("atomic", "") otherwise."""
    for key in LIST_MAP_KEYS.get(field, ()):
        if items and all(isinstance(item, dict) and key in item for item in items):
            return ("map", key)
    if field in SET_LISTS and all(isinstance(item, str | int | bool) for item in items):
        return ("set", "")
    return ("atomic", "")


def _find_item(items: list[Any], key: str, value: Any) -> int | None:
    for index, item in enumerate(items):
        if isinstance(item, dict) and item.get(key) == value:
            return index
    return None


# ---- JSON patch (RFC 6902) ----------------------------------------------------------------------


def json_patch(document: dict[str, Any], operations: list[dict[str, Any]]) -> dict[str, Any]:
    result: Any = copy.deepcopy(document)
    for operation in operations:
        result = _json_patch_op(result, operation)
    if not isinstance(result, dict):
        raise PatchError("the patched document is not an object")
    return result


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer: {path!r}")
    return [token.replace("~1", "/").replace("~0", "~") for token in path[1:].split("/")]


def _resolve(document: Any, tokens: list[str]) -> Any:
    node = document
    for token in tokens:
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            raise PatchError(f"path not found: /{'/'.join(tokens)}")
    return node


def _list_index(node: list[Any], token: str, *, inserting: bool) -> int:
    if inserting and token == "-":
        return len(node)
    limit = len(node) + (1 if inserting else 0)
    if not token.isdigit() or int(token) >= limit:
        raise PatchError(f"invalid list index: {token!r}")
    return int(token)


def _add(document: Any, tokens: list[str], value: Any) -> Any:
    if not tokens:
        return value
    parent = _resolve(document, tokens[:-1])
    if isinstance(parent, dict):
        parent[tokens[-1]] = value
    elif isinstance(parent, list):
        parent.insert(_list_index(parent, tokens[-1], inserting=True), value)
    else:
        raise PatchError(f"cannot add into a scalar at /{'/'.join(tokens)}")
    return document


def _remove(document: Any, tokens: list[str]) -> Any:
    if not tokens:
        raise PatchError("cannot remove the whole document")
    parent = _resolve(document, tokens[:-1])
    _resolve(document, tokens)  # raises if absent
    if isinstance(parent, dict):
        del parent[tokens[-1]]
    else:
        del parent[_list_index(parent, tokens[-1], inserting=False)]
    return document


def _json_patch_op(document: Any, operation: dict[str, Any]) -> Any:
    op = operation.get("op")
    tokens = _pointer(str(operation.get("path", "")))
    match op:
        case "add":
            return _add(document, tokens, copy.deepcopy(operation.get("value")))
        case "remove":
            return _remove(document, tokens)
        case "replace":
            _resolve(document, tokens)
            return _add(_remove(document, tokens) if tokens else document, tokens, operation.get("value"))
        case "move" | "copy":
            source = _pointer(str(operation.get("from", "")))
            value = copy.deepcopy(_resolve(document, source))
            document = _remove(document, source) if op == "move" else document
            return _add(document, tokens, value)
        case "test":
            if _resolve(document, tokens) != operation.get("value"):
                raise PatchTestFailed(f"test failed at {operation.get('path')!r}")
            return document
        case _:
            raise PatchError(f"unknown JSON patch operation: {op!r}")


# ---- merge patch (RFC 7386) and strategic merge ---------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge(target: Any, patch: Any) -> Any:
    """A subset of strategic merge: keyed lists merge by key, set lists union, `$patch` directives."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if not k.startswith("$")}
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            result[field] = [item for item in result.get(field, []) if item not in value]
        elif key.startswith("$"):
            continue  # $setElementOrder and $retainKeys only affect ordering/pruning details
        elif value is None or (isinstance(value, dict) and value.get("$patch") == "delete"):
            result.pop(key, None)
        elif isinstance(value, list) and isinstance(result.get(key), list):
            result[key] = _strategic_list(key, result[key], value)
        else:
            result[key] = strategic_merge(result.get(key), value)
    return result


def _strategic_list(field: str, current: list[Any], patch: list[Any]) -> list[Any]:
    if any(isinstance(item, dict) and item.get("$patch") == "replace" for item in patch):
        return [copy.deepcopy(i) for i in patch if not (isinstance(i, dict) and "$patch" in i)]
    kind, key = list_strategy(field, current + [i for i in patch if not _is_directive(i)])
    if kind == "set":
        return current + [item for item in patch if item not in current]
    if kind == "atomic":
        return copy.deepcopy(patch)
    result = copy.deepcopy(current)
    for item in patch:
        index = _find_item(result, key, item.get(key))
        if item.get("$patch") == "delete":
            result = [r for r in result if r.get(key) != item.get(key)]
        elif index is None:
            result.append(copy.deepcopy(item))
        else:
            result[index] = strategic_merge(result[index], item)
    return result


def _is_directive(item: Any) -> bool:
    return isinstance(item, dict) and "$patch" in item and len(item) == 1


# ---- server-side apply field sets -----------------------------------------------------------------


def field_paths(document: dict[str, Any], prefix: FieldPath = ()) -> set[FieldPath]:
    """Leaf paths of a document: scalars, empty maps, atomic lists, keyed-list items, set elements."""
    paths: set[FieldPath] = set()
    for key, value in document.items():
        path = (*prefix, key)
        if path in IDENTITY_PATHS:
            continue
        if isinstance(value, dict) and value:
            paths |= field_paths(value, path)
        elif isinstance(value, list) and value:
            paths |= _list_paths(key, value, path)
        else:
            paths.add(path)
    return paths


def _list_paths(field: str, items: list[Any], path: FieldPath) -> set[FieldPath]:
    kind, key = list_strategy(field, items)
    if kind == "set":
        return {(*path, ("v", item)) for item in items}
    if kind == "atomic":
        return {path}
    paths: set[FieldPath] = set()
    for item in items:
        paths |= field_paths(item, (*path, ("k", key, item[key])))
    return paths


def get_path(document: Any, path: FieldPath) -> tuple[bool, Any]:
    node = document
    for elem in path:
        if isinstance(elem, str) and isinstance(node, dict) and elem in node:
            node = node[elem]
        elif isinstance(elem, tuple) and elem[0] == "k" and isinstance(node, list):
            index = _find_item(node, elem[1], elem[2])
            if index is None:
                return (False, None)
            node = node[index]
        elif isinstance(elem, tuple) and elem[0] == "v" and isinstance(node, list) and elem[1] in node:
            node = elem[1]
        else:
            return (False, None)
    return (True, node)


def changed_paths(old: dict[str, Any], new: dict[str, Any]) -> set[FieldPath]:
    candidates = field_paths(old) | field_paths(new)
    return {path for path in candidates if get_path(old, path) != get_path(new, path)}


def remove_fields(document: dict[str, Any], stale: set[FieldPath], keep: set[FieldPath]) -> dict[str, Any]:
    """Remove fields a manager no longer applies, then prune maps and items left empty by that."""
    result = copy.deepcopy(document)
    # Key fields last: an item disappears only once nothing else is left in it.
    for path in sorted(stale, key=lambda p: (_is_key_leaf(p), -len(p))):
        _remove_field(result, path, keep)
    return result


def _is_key_leaf(path: FieldPath) -> bool:
    return len(path) >= 2 and isinstance(path[-2], tuple) and path[-2][0] == "k" and path[-2][1] == path[-1]


def _remove_field(document: dict[str, Any], path: FieldPath, keep: set[FieldPath]) -> None:
    found, parent = get_path(document, path[:-1])
    if not found:
        return
    last = path[-1]
    if _is_key_leaf(path):
        if set(parent) - {last}:
            return
        _drop(document, path[:-1])
        _prune(document, path[:-2], keep)
        return
    if isinstance(last, tuple) and last[0] == "v" and isinstance(parent, list):
        if last[1] in parent:
            parent.remove(last[1])
    elif isinstance(last, str) and isinstance(parent, dict):
        parent.pop(last, None)
    _prune(document, path[:-1], keep)


def _drop(document: dict[str, Any], path: FieldPath) -> None:
    found, parent = get_path(document, path[:-1])
    last = path[-1]
    if found and isinstance(last, tuple) and isinstance(parent, list):
        index = _find_item(parent, last[1], last[2])
        if index is not None:
            del parent[index]
    elif found and isinstance(parent, dict) and isinstance(last, str):
        parent.pop(last, None)


def _prune(document: dict[str, Any], path: FieldPath, keep: set[FieldPath]) -> None:
    while len(path) > 1 and path not in keep:
        found, node = get_path(document, path)
        if not found or node or any(k[: len(path)] == path for k in keep):
            return
        _drop(document, path)
        path = path[:-1]


def apply_merge(target: Any, applied: Any, field: str = "") -> Any:
    """Overlay an applied configuration: maps merge, keyed lists merge by key, sets union."""
    if not isinstance(applied, dict):
        return copy.deepcopy(applied)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in applied.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list) and isinstance(result.get(key), list):
            result[key] = _apply_list(key, result[key], value)
        else:
            result[key] = apply_merge(result.get(key), value, key)
    return result


def _apply_list(field: str, current: list[Any], applied: list[Any]) -> list[Any]:
    kind, key = list_strategy(field, applied)
    if kind == "set":
        return current + [item for item in applied if item not in current]
    if kind == "atomic" or list_strategy(field, current)[0] != "map":
        return copy.deepcopy(applied)
    result = copy.deepcopy(current)
    for item in applied:
        index = _find_item(result, key, item[key])
        if index is None:
            result.append(copy.deepcopy(item))
        else:
            result[index] = apply_merge(result[index], item)
    return result
