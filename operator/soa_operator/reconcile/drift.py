"""Is a live object still what we applied? Detects hand edits the hash annotation cannot see.

The hash annotation says what we last applied, not what is there now: someone may have edited a
NetworkPolicy by hand. Comparing desired with live as a *subset* (every field we set is present
with our value) ignores what the server added — defaults, status, managedFields — so a faithful
object never looks drifted and an idle reconcile still writes nothing.

Two refinements keep that promise on a real server:
- quantities compare by value ("8000m" is stored as "8"), and list items added by another field
  manager (``kubectl set env``) are tolerated: our apply could never remove them, so flagging
  them would re-apply forever;
- NetworkPolicies are compared both ways: an extra rule loosens isolation, and their rule lists
  are atomic, so a forced apply does remove it.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from soa_operator.kube.client import parse_quantity

_IGNORED_TOP_LEVEL = {"apiVersion", "kind", "metadata", "status"}
_STRICT_KINDS = {"NetworkPolicy"}
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|Ki|Mi|Gi|Ti|Pi|Ei|M|G|T|P|E)?$")


def _quantity(value: str) -> Decimal | None:
    if not _QUANTITY.match(value):
        return None
    try:
        return parse_quantity(value)
    except (ValueError, InvalidOperation):
        return None


def _same_scalar(desired: Any, live: Any) -> bool:
    if isinstance(desired, bool) or isinstance(live, bool):
        return desired is live
    if isinstance(desired, int | float) and isinstance(live, int | float):
        return float(desired) == float(live)
    if isinstance(desired, str) and isinstance(live, str) and desired != live:
        a, b = _quantity(desired), _quantity(live)
        return a is not None and a == b
    return bool(desired == live)


def _subset(desired: Any, live: Any) -> bool:
    """Every field of ``desired`` is in ``live`` with the same value; lists match item by item,
    each desired item by some live item, in any order."""
    if isinstance(desired, dict):
        return isinstance(live, dict) and all(k in live and _subset(v, live[k]) for k, v in desired.items())
    if isinstance(desired, list):
        return isinstance(live, list) and all(any(_subset(d, item) for item in live) for d in desired)
    return _same_scalar(desired, live)


def _body(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in _IGNORED_TOP_LEVEL}


def has_foreign_fields(desired: dict[str, Any], live: dict[str, Any]) -> bool:
    """For kinds compared both ways: does ``live`` carry fields we never set (e.g. an added rule)?"""
    return desired.get("kind") in _STRICT_KINDS and not _subset(_body(live), _body(desired))


def exact_patch(desired: Any, live: Any) -> Any:
    """A JSON merge patch turning ``live`` into exactly ``desired``: lists are replaced whole and
    keys we do not set are nulled. Server-side apply cannot remove fields another manager added;
    this can, without the deny-nothing window a delete and re-create would open."""
    if isinstance(desired, dict) and isinstance(live, dict):
        patch = {k: exact_patch(v, live.get(k)) for k, v in desired.items()}
        patch.update({k: None for k in live if k not in desired})
        return patch
    return desired


def drifted(desired: dict[str, Any], live: dict[str, Any]) -> bool:
    """True when a field we set, or one of our labels, no longer has our value."""
    want_meta, live_meta = desired.get("metadata", {}), live.get("metadata", {})
    if not _subset(want_meta.get("labels") or {}, live_meta.get("labels") or {}):
        return True
    if not _subset(_body(desired), _body(live)):
        return True
    return has_foreign_fields(desired, live)
