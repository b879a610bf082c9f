"""Status is level-based and keeps transition times of conditions that did not flip."""

from __future__ import annotations

from soa_operator.api.model import Phase
from soa_operator.reconcile.status import Assessment, ConditionState, build_status, status_changed, workload_replicas


def _deployment(replicas: int, ready: int, generation: int = 2, observed: int = 2) -> dict[str, object]:
    return {
        "metadata": {"generation": generation},
        "spec": {"replicas": replicas},
        "status": {"readyReplicas": ready, "replicas": ready, "observedGeneration": observed},
    }


def test_workload_ready_counts_replicas() -> None:
    assert workload_replicas(_deployment(2, 2)) == (2, 2)
    assert workload_replicas(_deployment(3, 1)) == (1, 3)


def test_stale_workload_status_is_not_ready() -> None:
    assert workload_replicas(_deployment(2, 2, generation=3, observed=2)) == (0, 2)


def test_scaled_down_workload_is_settled_only_when_pods_are_gone() -> None:
    assert workload_replicas(_deployment(0, 0)) == (0, 0)
    assert workload_replicas(_deployment(0, 1)) == (0, 1)


def test_unchanged_condition_keeps_its_transition_time() -> None:
    assessment = Assessment(phase=Phase.Ready, conditions={"Ready": ConditionState("True", "Ready", "ok")})
    first = build_status(assessment, None, 1)
    first["conditions"][0]["lastTransitionTime"] = "2020-01-01T00:00:00Z"
    second = build_status(assessment, first, 1)
    assert second["conditions"][0]["lastTransitionTime"] == "2020-01-01T00:00:00Z"
    assert not status_changed(second, first)


def test_flipped_condition_gets_a_new_transition_time() -> None:
    ready = Assessment(phase=Phase.Ready, conditions={"Ready": ConditionState("True", "Ready", "ok")})
    first = build_status(ready, None, 1)
    first["conditions"][0]["lastTransitionTime"] = "2020-01-01T00:00:00Z"
    broken = Assessment(phase=Phase.Degraded, conditions={"Ready": ConditionState("False", "X", "no")})
    second = build_status(broken, first, 1)
    assert second["conditions"][0]["lastTransitionTime"] != "2020-01-01T00:00:00Z"
    assert status_changed(second, first)


def test_kopf_bookkeeping_does_not_count_as_change() -> None:
    status = build_status(Assessment(phase=Phase.Ready), None, 1)
    assert not status_changed(status, {**status, "kopf": {"progress": {}}})
