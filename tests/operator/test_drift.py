"""Drift: hand edits are detected, server normalisation and others' additions are not drift."""

from __future__ import annotations

from typing import Any

from soa_operator.reconcile.drift import drifted


def _quota(cpu: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {}, "spec": {"hard": {"limits.cpu": cpu}}}


def _deployment(env: list[dict[str, str]]) -> dict[str, Any]:
    container = {"name": "api", "image": "x:1", "env": env}
    return {"kind": "Deployment", "metadata": {}, "spec": {"template": {"spec": {"containers": [container]}}}}


def _policy(ingress: list[dict[str, Any]]) -> dict[str, Any]:
    return {"kind": "NetworkPolicy", "metadata": {}, "spec": {"podSelector": {}, "ingress": ingress}}


def test_server_defaults_are_not_drift() -> None:
    desired = _deployment([{"name": "A", "value": "1"}])
    live = _deployment([{"name": "A", "value": "1"}])
    live["spec"]["template"]["spec"]["containers"][0]["terminationMessagePath"] = "/dev/termination-log"
    live["spec"]["progressDeadlineSeconds"] = 600
    assert not drifted(desired, live)


def test_a_changed_value_is_drift() -> None:
    assert drifted(_quota("8"), _quota("16"))


def test_canonicalised_quantities_are_not_drift() -> None:
    assert not drifted(_quota("8000m"), _quota("8"))
    assert not drifted(_quota("51200Mi"), _quota("50Gi"))
    assert drifted(_quota("8001m"), _quota("8"))


def test_list_items_added_by_another_manager_are_tolerated() -> None:
    desired = _deployment([{"name": "A", "value": "1"}])
    live = _deployment([{"name": "DEBUG", "value": "1"}, {"name": "A", "value": "1"}])
    assert not drifted(desired, live)


def test_a_removed_list_item_is_drift() -> None:
    assert drifted(_deployment([{"name": "A", "value": "1"}]), _deployment([]))


def test_an_extra_network_policy_rule_is_drift() -> None:
    assert drifted(_policy([]), _policy([{}]))
    assert not drifted(_policy([{"from": [{"podSelector": {}}]}]), _policy([{"from": [{"podSelector": {}}]}]))


def test_a_removed_label_is_drift() -> None:
    desired = {"kind": "ConfigMap", "metadata": {"labels": {"a": "1"}}, "data": {}}
    assert drifted(desired, {"kind": "ConfigMap", "metadata": {"labels": {}}, "data": {}})


def test_exact_patch_removes_foreign_fields_and_replaces_lists() -> None:
    from soa_operator.reconcile.drift import exact_patch

    desired = {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    live = {"podSelector": {"matchLabels": {"x": "1"}}, "policyTypes": ["Ingress"], "ingress": [{}]}
    assert exact_patch(desired, live) == {
        "podSelector": {"matchLabels": None},
        "policyTypes": ["Ingress", "Egress"],
        "ingress": None,
    }
