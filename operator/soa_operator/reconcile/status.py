"""Level-based status: phase, conditions and component counts computed from live children.

Conditions keep their ``lastTransitionTime`` unless their status flips, and the status is
written only when the computed one differs from what the object already carries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from soa_operator.api.model import Phase
from soa_operator.reconcile.kinds import DEPLOYMENT, STATEFULSET, Kind

COMPONENT_WORKLOADS: dict[str, tuple[str, ...]] = {
    "messaging": ("soa-postgres", "soa-redis", "soa-api", "soa-worker", "soa-beat"),
    "storage": ("soa-minio",),
    "meetings": ("soa-janus", "soa-coturn"),
}
COMPONENT_CONDITIONS = {"messaging": "MessagingReady", "storage": "StorageReady", "meetings": "MeetingsReady"}
CONDITION_TYPES = ("Ready", "Isolated", "MessagingReady", "StorageReady", "MeetingsReady", "UpgradeSucceeded")


@dataclass(frozen=True)
class ConditionState:
    status: str  # "True" | "False" | "Unknown"
    reason: str
    message: str = ""


@dataclass
class Assessment:
    """What one reconcile concluded, before it is turned into the status object."""

    phase: Phase
    conditions: dict[str, ConditionState] = field(default_factory=dict)
    components: dict[str, dict[str, int]] = field(default_factory=dict)
    version: str | None = None
    namespace: str | None = None
    url: str | None = None


def workload_replicas(obj: dict[str, Any]) -> tuple[int, int]:
    """(ready, desired) replicas of a Deployment or StatefulSet, honest about stale status."""
    spec_replicas = int((obj.get("spec") or {}).get("replicas", 1))
    status = obj.get("status") or {}
    generation = int(obj.get("metadata", {}).get("generation") or 0)
    if int(status.get("observedGeneration") or 0) < generation:
        return 0, spec_replicas
    ready = int(status.get("readyReplicas") or 0)
    if spec_replicas == 0:
        return (0, 0) if int(status.get("replicas") or 0) == 0 else (0, 1)
    return min(ready, spec_replicas), spec_replicas


def job_state(job: dict[str, Any] | None) -> str:
    """ "missing", "running", "succeeded" or "failed" for a Job."""
    if job is None:
        return "missing"
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("status") == "True" and cond.get("type") in ("Complete", "SuccessCriteriaMet"):
            return "succeeded"
        if cond.get("status") == "True" and cond.get("type") in ("Failed", "FailureTarget"):
            return "failed"
    return "running"


def component_counts(
    live: dict[tuple[Kind, str], dict[str, Any]], desired_names: set[tuple[Kind, str]]
) -> dict[str, dict[str, int]]:
    """Ready/desired replicas per component, over the workloads the chart renders."""
    counts: dict[str, dict[str, int]] = {}
    for component, names in COMPONENT_WORKLOADS.items():
        ready = desired = 0
        for name in names:
            for kind in (DEPLOYMENT, STATEFULSET):
                if (kind, name) not in desired_names:
                    continue
                obj = live.get((kind, name))
                r, d = workload_replicas(obj) if obj else (0, 1)
                ready, desired = ready + r, desired + d
        counts[component] = {"ready": ready, "desired": desired}
    return counts


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_status(assessment: Assessment, current: dict[str, Any] | None, generation: int | None) -> dict[str, Any]:
    """The status object to write, preserving transition times of unchanged conditions."""
    previous = {c.get("type"): c for c in (current or {}).get("conditions") or []}
    conditions = []
    for ctype in CONDITION_TYPES:
        state = assessment.conditions.get(ctype)
        if state is None:
            continue
        before = previous.get(ctype) or {}
        flipped = before.get("status") != state.status
        conditions.append(
            {
                "type": ctype,
                "status": state.status,
                "reason": state.reason,
                "message": state.message,
                "observedGeneration": generation,
                "lastTransitionTime": _now() if flipped else before.get("lastTransitionTime", _now()),
            }
        )
    # Every key is always present (None clears it in a merge patch), so a field dropped from the
    # assessment cannot linger in the stored status and make every comparison differ.
    return {
        "phase": assessment.phase.value,
        "observedGeneration": generation,
        "namespace": assessment.namespace,
        "url": assessment.url,
        "version": assessment.version,
        "conditions": conditions,
        "components": assessment.components,
    }


def carried_conditions(current: dict[str, Any] | None) -> dict[str, ConditionState]:
    """The conditions already in ``current``, to keep when only some of them are re-assessed."""
    carried = {}
    for cond in (current or {}).get("conditions") or []:
        if cond.get("type") in CONDITION_TYPES:
            carried[cond["type"]] = ConditionState(cond["status"], cond.get("reason", ""), cond.get("message", ""))
    return carried


def status_changed(new: dict[str, Any], current: dict[str, Any] | None) -> bool:
    """True when anything but bookkeeping differs (kopf's own keys and cleared keys are ignored)."""
    stored = {k: v for k, v in (current or {}).items() if k != "kopf" and v is not None}
    wanted = {k: v for k, v in new.items() if v is not None}
    return wanted != stored
