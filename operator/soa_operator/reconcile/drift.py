"""Is a live object still what we applied? Detects hand edits the hash annotation cannot see.

The hash annotation says what we last applied, not what is there now: someone may have edited a
NetworkPolicy by hand. Comparing desired with live as a *subset* (every field we set is present
with our value) ignores what the server added — defaults, status, managedFields — so a faithful
object never looks drifted and an idle reconcile still writes nothing.
"""

from __future__ import annotations

from typing import Any

_IGNORED_TOP_LEVEL = {"apiVersion", "kind", "metadata", "status"}


def _subset(desired: Any, live: Any) -> bool:
    if isinstance(desired, dict):
        return isinstance(live, dict) and all(k in live and _subset(v, live[k]) for k, v in desired.items())
    if isinstance(desired, list):
        return isinstance(live, list) and len(desired) == len(live) and all(map(_subset, desired, live))
    if isinstance(desired, bool) or isinstance(live, bool):
        return desired is live
    if isinstance(desired, int | float) and isinstance(live, int | float):
        return float(desired) == float(live)
    return bool(desired == live)


def drifted(desired: dict[str, Any], live: dict[str, Any]) -> bool:
    """True when a field we set, or one of our labels, no longer has our value."""
    want_meta, live_meta = desired.get("metadata", {}), live.get("metadata", {})
    if not _subset(want_meta.get("labels") or {}, live_meta.get("labels") or {}):
        return True
    body = {k: v for k, v in desired.items() if k not in _IGNORED_TOP_LEVEL}
    return not _subset(body, {k: v for k, v in live.items() if k not in _IGNORED_TOP_LEVEL})
