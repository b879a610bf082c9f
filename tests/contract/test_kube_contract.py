"""Contract tests: the Kubernetes API semantics the operator relies on, one behaviour per test.

They run against the emulator (tests/support/kube_emulator.py) by default and against a real cluster
when SOA_TEST_KUBECONFIG is set; tests that use emulator-only knobs (kubelet, faults, accounting)
take the `emulator` fixture and are skipped on a real cluster.
"""

from __future__ import annotations

import asyncio
import collections
import os
import subprocess
import sys
import threading
import time
from typing import Any

import kopf
import pytest

from tests.contract.conftest import GROUP, Cluster, Http, Reply, wait_until, widget_crd
from tests.support.kube_emulator import KubeEmulator

pytestmark = pytest.mark.timeout(30)

MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"
CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


def core(ns: str, plural: str, name: str = "") -> str:
    return f"/api/v1/namespaces/{ns}/{plural}" + (f"/{name}" if name else "")


def apps(ns: str, plural: str, name: str = "") -> str:
    return f"/apis/apps/v1/namespaces/{ns}/{plural}" + (f"/{name}" if name else "")


def configmap(name: str, data: dict[str, str] | None = None, **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, **meta}, "data": data or {}}


def deployment(name: str, replicas: int = 1, image: str = "nginx:1") -> dict[str, Any]:
    labels = {"app": name}
    template = {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "main", "image": image}]}}
    spec = {"replicas": replicas, "selector": {"matchLabels": labels}, "template": template}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name}, "spec": spec}


def widget(cluster: Cluster, name: str, **spec: Any) -> dict[str, Any]:
    meta = {"name": name, "labels": cluster.labels()}
    return {"apiVersion": f"{GROUP}/v1alpha1", "kind": "Widget", "metadata": meta, "spec": spec}


def owner_ref(owner: dict[str, Any]) -> dict[str, Any]:
    meta = owner["metadata"]
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": meta["name"], "uid": meta["uid"]}


def rv(obj: dict[str, Any]) -> int:
    return int(obj["metadata"]["resourceVersion"])


def gone(http: Http, path: str) -> bool:
    return http.call("GET", path).status == 404


def apply(http: Http, path: str, body: Any, manager: str = "soa-operator", force: bool = True) -> Reply:
    query = {"fieldManager": manager, **({"force": "true"} if force else {})}
    return http.call("PATCH", path, body, content_type=APPLY, query=query)


# ---- identity metadata --------------------------------------------------------------------------------


def test_create_assigns_uid_resource_version_and_timestamp(http: Http, ns: str) -> None:
    created = http.ok("POST", core(ns, "configmaps"), configmap("a"))
    meta = created["metadata"]
    assert len(meta["uid"]) == 36
    assert meta["resourceVersion"].isdigit()
    assert meta["creationTimestamp"].endswith("Z")
    assert meta["namespace"] == ns


def test_generation_starts_at_one_for_workloads(http: Http, ns: str) -> None:
    created = http.ok("POST", apps(ns, "deployments"), deployment("d"))
    assert created["metadata"]["generation"] == 1


def test_resource_version_increases_across_kinds(http: Http, ns: str) -> None:
    first = http.ok("POST", core(ns, "configmaps"), configmap("a"))
    second = http.ok("POST", core(ns, "secrets"), {"metadata": {"name": "s"}})
    third = http.ok("PATCH", core(ns, "configmaps", "a"), {"data": {"k": "v"}}, content_type=MERGE)
    assert rv(first) < rv(second) < rv(third)


def test_generation_bumps_on_spec_change_only(http: Http, ns: str) -> None:
    http.ok("POST", apps(ns, "deployments"), deployment("d"))
    labelled = http.ok("PATCH", apps(ns, "deployments", "d"), {"metadata": {"labels": {"x": "1"}}}, content_type=MERGE)
    scaled = http.ok("PATCH", apps(ns, "deployments", "d"), {"spec": {"replicas": 3}}, content_type=MERGE)
    assert labelled["metadata"]["generation"] == 1
    assert scaled["metadata"]["generation"] == 2


def test_generate_name_makes_a_unique_name(http: Http, ns: str) -> None:
    created = http.ok("POST", core(ns, "configmaps"), {"metadata": {"generateName": "gen-"}})
    assert created["metadata"]["name"].startswith("gen-")
    assert len(created["metadata"]["name"]) > len("gen-")


def test_invalid_name_is_rejected(http: Http, ns: str) -> None:
    reply = http.call("POST", core(ns, "configmaps"), configmap("Not_Valid"))
    assert reply.status == 422
    assert reply.body["reason"] == "Invalid"


def test_invalid_label_value_is_rejected(http: Http, ns: str) -> None:
    reply = http.call("POST", core(ns, "configmaps"), configmap("a", labels={"k": "has spaces"}))
    assert reply.status == 422


# ---- finalizers & deletion ----------------------------------------------------------------------------


def test_delete_with_finalizer_sets_deletion_timestamp(http: Http, ns: str) -> None:
    http.ok("POST", core(ns, "configmaps"), configmap("a", finalizers=["contract.soa.test/hold"]))
    http.ok("DELETE", core(ns, "configmaps", "a"))
    held = http.ok("GET", core(ns, "configmaps", "a"))
    assert held["metadata"]["deletionTimestamp"]
    assert held["metadata"]["finalizers"] == ["contract.soa.test/hold"]


def test_removing_last_finalizer_deletes_the_object(http: Http, ns: str) -> None:
    http.ok("POST", core(ns, "configmaps"), configmap("a", finalizers=["contract.soa.test/hold"]))
    http.ok("DELETE", core(ns, "configmaps", "a"))
    http.ok("PATCH", core(ns, "configmaps", "a"), {"metadata": {"finalizers": None}}, content_type=MERGE)
    assert gone(http, core(ns, "configmaps", "a"))


def test_adding_finalizer_to_deleting_object_is_forbidden(http: Http, ns: str) -> None:
    http.ok("POST", core(ns, "configmaps"), configmap("a", finalizers=["contract.soa.test/hold"]))
    http.ok("DELETE", core(ns, "configmaps", "a"))
    patch = {"metadata": {"finalizers": ["contract.soa.test/hold", "contract.soa.test/more"]}}
    reply = http.call("PATCH", core(ns, "configmaps", "a"), patch, content_type=MERGE)
    assert reply.status == 422


def test_delete_without_finalizers_removes_immediately(http: Http, ns: str) -> None:
    http.ok("POST", core(ns, "configmaps"), configmap("a"))
    reply = http.call("DELETE", core(ns, "configmaps", "a"))
    assert reply.status == 200
    assert gone(http, core(ns, "configmaps", "a"))


# ---- errors and optimistic concurrency ----------------------------------------------------------------


def test_missing_object_is_404_with_status_body(http: Http, ns: str) -> None:
    reply = http.call("GET", core(ns, "secrets", "missing"))
    assert reply.status == 404
    assert reply.body["kind"] == "Status"
    assert reply.body["reason"] == "NotFound"
    assert reply.body["details"]["name"] == "missing"


def test_post_of_existing_name_is_already_exists(http: Http, ns: str) -> None:
    http.ok("POST", core(ns, "secrets"), {"metadata": {"name": "s"}})
    reply = http.call("POST", core(ns, "secrets"), {"metadata": {"name": "s"}})
    assert reply.status == 409
    assert reply.body["reason"] == "AlreadyExists"


def test_put_with_stale_resource_version_conflicts(http: Http, ns: str) -> None:
    stale = http.ok("POST", core(ns, "configmaps"), configmap("a"))
    http.ok("PATCH", core(ns, "configmaps", "a"), {"data": {"k": "1"}}, content_type=MERGE)
    reply = http.call("PUT", core(ns, "configmaps", "a"), {**stale, "data": {"k": "2"}})
    assert reply.status == 409
    assert reply.body["reason"] == "Conflict"


def test_put_with_current_resource_version_replaces(http: Http, ns: str) -> None:
    current = http.ok("POST", core(ns, "configmaps"), configmap("a", {"old": "1"}))
    replaced = http.ok("PUT", core(ns, "configmaps", "a"), {**current, "data": {"new": "1"}})
    assert replaced["data"] == {"new": "1"}
    assert rv(replaced) > rv(current)


def test_merge_patch_with_stale_resource_version_conflicts(http: Http, ns: str) -> None:
    stale = http.ok("POST", core(ns, "configmaps"), configmap("a"))
    http.ok("PATCH", core(ns, "configmaps", "a"), {"data": {"k": "1"}}, content_type=MERGE)
    patch = {"metadata": {"resourceVersion": stale["metadata"]["resourceVersion"]}, "data": {"k": "2"}}
    reply = http.call("PATCH", core(ns, "configmaps", "a"), patch, content_type=MERGE)
    assert reply.status == 409


def test_merge_patch_null_removes_a_key(http: Http, ns: str) -> None:
    http.ok("POST", core(ns, "configmaps"), configmap("a", {"keep": "1", "drop": "1"}))
    patched = http.ok("PATCH", core(ns, "configmaps", "a"), {"data": {"drop": None}}, content_type=MERGE)
    assert patched["data"] == {"keep": "1"}


def test_json_patch_applies_operations_after_a_passing_test(http: Http, ns: str) -> None:
    created = http.ok("POST", core(ns, "configmaps"), configmap("a", {"x": "1"}))
    ops = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": created["metadata"]["resourceVersion"]},
        {"op": "add", "path": "/metadata/finalizers", "value": ["contract.soa.test/f"]},
        {"op": "replace", "path": "/data/x", "value": "2"},
        {"op": "add", "path": "/metadata/annotations", "value": {"a~b/c": "v"}},
    ]
    patched = http.ok("PATCH", core(ns, "configmaps", "a"), ops, content_type=JSON_PATCH)
    assert patched["metadata"]["finalizers"] == ["contract.soa.test/f"]
    assert patched["data"] == {"x": "2"}
    remove = [
        {"op": "remove", "path": "/metadata/finalizers/0"},
        {"op": "remove", "path": "/metadata/annotations/a~0b~1c"},
    ]
    cleaned = http.ok("PATCH", core(ns, "configmaps", "a"), remove, content_type=JSON_PATCH)
    assert cleaned["metadata"].get("finalizers") in (None, [])
    assert not cleaned["metadata"].get("annotations")


def test_json_patch_failing_test_is_unprocessable_and_changes_nothing(http: Http, ns: str) -> None:
    created = http.ok("POST", core(ns, "configmaps"), configmap("a"))
    ops = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "1"},
        {"op": "add", "path": "/data/k", "value": "v"},
    ]
    reply = http.call("PATCH", core(ns, "configmaps", "a"), ops, content_type=JSON_PATCH)
    assert reply.status == 422  # what kopf expects (APIUnprocessableEntityError) for a stale test
    assert http.ok("GET", core(ns, "configmaps", "a")) == created


def test_strategic_merge_merges_containers_by_name(http: Http, ns: str) -> None:
    http.ok("POST", apps(ns, "deployments"), deployment("d"))
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "side", "image": "busybox:1"}]}}}}
    patched = http.ok("PATCH", apps(ns, "deployments", "d"), patch, content_type=STRATEGIC)
    names = [c["name"] for c in patched["spec"]["template"]["spec"]["containers"]]
    assert sorted(names) == ["main", "side"]


def test_strategic_merge_is_unsupported_for_custom_resources(cluster: Cluster, widgets: str) -> None:
    name = cluster.unique("w")
    cluster.http.ok("POST", widgets, widget(cluster, name, size=1))
    reply = cluster.http.call("PATCH", f"{widgets}/{name}", {"spec": {"size": 2}}, content_type=STRATEGIC)
    assert reply.status == 415


# ---- namespaces ---------------------------------------------------------------------------------------


def test_namespace_is_created_by_post(cluster: Cluster) -> None:
    name = cluster.unique("ct")
    created = cluster.http.ok("POST", "/api/v1/namespaces", {"metadata": {"name": name}})
    try:
        assert created["status"]["phase"] == "Active"
        assert cluster.http.ok("GET", f"/api/v1/namespaces/{name}")["metadata"]["uid"] == created["metadata"]["uid"]
    finally:
        cluster.http.call("DELETE", f"/api/v1/namespaces/{name}")


def test_object_in_missing_namespace_is_not_found(http: Http) -> None:
    reply = http.call("POST", core("ct-does-not-exist", "configmaps"), configmap("a"))
    assert reply.status == 404
    assert reply.body["details"]["kind"] == "namespaces"


def test_deleting_namespace_deletes_its_objects(http: Http, ns: str) -> None:
    http.ok("POST", core(ns, "configmaps"), configmap("a"))
    http.ok("POST", apps(ns, "deployments"), deployment("d"))
    http.ok("DELETE", f"/api/v1/namespaces/{ns}")
    wait_until(lambda: gone(http, core(ns, "configmaps", "a")) and gone(http, apps(ns, "deployments", "d")), 60)
    wait_until(lambda: gone(http, f"/api/v1/namespaces/{ns}"), 60)


def test_terminating_namespace_rejects_new_objects(http: Http, ns: str) -> None:
    http.ok("POST", core(ns, "configmaps"), configmap("held", finalizers=["contract.soa.test/hold"]))
    http.ok("DELETE", f"/api/v1/namespaces/{ns}")
    wait_until(lambda: http.ok("GET", core(ns, "configmaps", "held"))["metadata"].get("deletionTimestamp"), 60)
    assert http.ok("GET", f"/api/v1/namespaces/{ns}")["status"]["phase"] == "Terminating"
    assert http.call("POST", core(ns, "configmaps"), configmap("late")).status == 403
    http.ok("PATCH", core(ns, "configmaps", "held"), {"metadata": {"finalizers": None}}, content_type=MERGE)
    wait_until(lambda: gone(http, f"/api/v1/namespaces/{ns}"), 60)


# ---- selectors and pagination ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("tier=web", ["a", "b"]),
        ("tier==web,zone=x", ["a"]),
        ("tier!=web", ["c", "d"]),
        ("zone", ["a", "c"]),
        ("!zone", ["b", "d"]),
        ("tier in (web,db)", ["a", "b", "c"]),
        ("tier notin (web)", ["c", "d"]),
        ("tier in (web, db),zone", ["a", "c"]),
        ("tier in (web, db),zone,zone notin (y)", ["a"]),
    ],
)
def test_label_selector_on_list(http: Http, ns: str, selector: str, expected: list[str]) -> None:
    labels = {"a": {"tier": "web", "zone": "x"}, "b": {"tier": "web"}, "c": {"tier": "db", "zone": "y"}, "d": {}}
    for name, value in labels.items():
        http.ok("POST", core(ns, "configmaps"), configmap(name, labels=value))
    listed = http.ok("GET", core(ns, "configmaps"), query={"labelSelector": selector})
    assert sorted(item["metadata"]["name"] for item in listed["items"]) == expected


def test_malformed_label_selector_is_bad_request(http: Http, ns: str) -> None:
    reply = http.call("GET", core(ns, "configmaps"), query={"labelSelector": "a in (b"})
    assert reply.status == 400


def test_field_selector_by_name(http: Http, ns: str) -> None:
    for name in ("a", "b"):
        http.ok("POST", core(ns, "configmaps"), configmap(name))
    listed = http.ok("GET", core(ns, "configmaps"), query={"fieldSelector": "metadata.name=b"})
    assert [item["metadata"]["name"] for item in listed["items"]] == ["b"]


def test_field_selector_by_namespace_on_cluster_wide_list(cluster: Cluster, ns: str) -> None:
    cluster.http.ok("POST", core(ns, "configmaps"), configmap("a", labels=cluster.labels()))
    query = {"fieldSelector": f"metadata.namespace={ns}", "labelSelector": cluster.selector}
    listed = cluster.http.ok("GET", "/api/v1/configmaps", query=query)
    assert [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in listed["items"]] == [(ns, "a")]


def test_list_carries_resource_version_and_kind(http: Http, ns: str) -> None:
    http.ok("POST", core(ns, "configmaps"), configmap("a"))
    listed = http.ok("GET", core(ns, "configmaps"))
    assert listed["kind"] == "ConfigMapList"
    assert listed["metadata"]["resourceVersion"].isdigit()


def test_list_pages_with_limit_and_continue(http: Http, ns: str) -> None:
    for index in range(5):
        http.ok("POST", core(ns, "configmaps"), configmap(f"c{index}"))
    first = http.ok("GET", core(ns, "configmaps"), query={"limit": "2"})
    rest = http.ok("GET", core(ns, "configmaps"), query={"limit": "10", "continue": first["metadata"]["continue"]})
    names = [i["metadata"]["name"] for i in first["items"] + rest["items"]]
    assert len(first["items"]) == 2
    assert sorted(names) == [f"c{i}" for i in range(5)]
    assert not rest["metadata"].get("continue")


# ---- watch ----------------------------------------------------------------------------------------------


def test_watch_from_resource_version_sends_only_later_events(http: Http, ns: str) -> None:
    http.ok("POST", core(ns, "configmaps"), configmap("before"))
    since = http.ok("GET", core(ns, "configmaps"))["metadata"]["resourceVersion"]
    http.ok("POST", core(ns, "configmaps"), configmap("after"))
    http.ok("PATCH", core(ns, "configmaps", "after"), {"data": {"k": "v"}}, content_type=MERGE)
    events = http.watch(core(ns, "configmaps"), {"resourceVersion": since, "timeoutSeconds": "1"}, count=3)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "after"), ("MODIFIED", "after")]


def test_watch_without_resource_version_starts_with_existing_objects(http: Http, ns: str) -> None:
    http.ok("POST", core(ns, "configmaps"), configmap("a"))
    events = http.watch(core(ns, "configmaps"), {"timeoutSeconds": "5"}, count=1)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "a")]


def test_watch_delivers_live_events(http: Http, ns: str) -> None:
    since = http.ok("GET", core(ns, "configmaps"))["metadata"]["resourceVersion"]
    timer = threading.Timer(0.2, lambda: http.ok("POST", core(ns, "configmaps"), configmap("live")))
    timer.start()
    events = http.watch(core(ns, "configmaps"), {"resourceVersion": since, "timeoutSeconds": "5"}, count=1)
    timer.join()
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "live")]


def test_watch_events_carry_api_version_and_kind(http: Http, ns: str) -> None:
    since = http.ok("GET", apps(ns, "deployments"))["metadata"]["resourceVersion"]
    http.ok("POST", apps(ns, "deployments"), deployment("d"))
    events = http.watch(apps(ns, "deployments"), {"resourceVersion": since, "timeoutSeconds": "5"}, count=1)
    assert (events[0]["object"]["apiVersion"], events[0]["object"]["kind"]) == ("apps/v1", "Deployment")


def test_watch_honours_timeout_seconds(http: Http, ns: str) -> None:
    started = time.monotonic()
    events = http.watch(core(ns, "configmaps"), {"timeoutSeconds": "1"}, count=100, timeout=10)
    assert events == []
    assert time.monotonic() - started < 5


def test_watch_honours_label_selector(http: Http, ns: str) -> None:
    since = http.ok("GET", core(ns, "configmaps"))["metadata"]["resourceVersion"]
    http.ok("POST", core(ns, "configmaps"), configmap("other", labels={"app": "other"}))
    http.ok("POST", core(ns, "configmaps"), configmap("mine", labels={"app": "mine"}))
    query = {"resourceVersion": since, "labelSelector": "app=mine", "timeoutSeconds": "5"}
    events = http.watch(core(ns, "configmaps"), query, count=1)
    assert [e["object"]["metadata"]["name"] for e in events] == ["mine"]


def test_watch_reports_object_leaving_selection_as_deleted(http: Http, ns: str) -> None:
    http.ok("POST", core(ns, "configmaps"), configmap("a", labels={"app": "mine"}))
    since = http.ok("GET", core(ns, "configmaps"))["metadata"]["resourceVersion"]
    http.ok("PATCH", core(ns, "configmaps", "a"), {"metadata": {"labels": {"app": "x"}}}, content_type=MERGE)
    query = {"resourceVersion": since, "labelSelector": "app=mine", "timeoutSeconds": "5"}
    events = http.watch(core(ns, "configmaps"), query, count=1)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("DELETED", "a")]


def test_no_op_writes_emit_no_watch_event(http: Http, ns: str) -> None:
    created = apply(http, core(ns, "configmaps", "a"), configmap("a", {"k": "v"})).body
    since = created["metadata"]["resourceVersion"]
    no_ops = [
        http.ok("PATCH", core(ns, "configmaps", "a"), {"data": {"k": "v"}}, content_type=MERGE),
        http.ok("PUT", core(ns, "configmaps", "a"), created),
        apply(http, core(ns, "configmaps", "a"), configmap("a", {"k": "v"})).body,
    ]
    assert [o["metadata"]["resourceVersion"] for o in no_ops] == [since] * 3
    http.ok("PATCH", core(ns, "configmaps", "a"), {"data": {"k": "changed"}}, content_type=MERGE)
    events = http.watch(core(ns, "configmaps"), {"resourceVersion": since, "timeoutSeconds": "5"}, count=1)
    assert events[0]["object"]["data"] == {"k": "changed"}


def test_cluster_wide_watch_with_label_selector(cluster: Cluster, ns: str) -> None:
    http = cluster.http
    since = http.ok("GET", "/apis/apps/v1/deployments")["metadata"]["resourceVersion"]
    http.ok("POST", apps(ns, "deployments"), deployment("plain"))
    labelled = deployment("managed")
    labelled["metadata"]["labels"] = cluster.labels()
    http.ok("POST", apps(ns, "deployments"), labelled)
    query = {
        "resourceVersion": since,
        "labelSelector": cluster.selector,
        "timeoutSeconds": "5",
    }
    events = http.watch("/apis/apps/v1/deployments", query, count=1)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "managed")]


def test_watch_from_compacted_resource_version_gets_410(emulator: KubeEmulator, http: Http, ns: str) -> None:
    since = http.ok("POST", core(ns, "configmaps"), configmap("a"))["metadata"]["resourceVersion"]
    http.ok("POST", core(ns, "configmaps"), configmap("b"))
    emulator.compact()
    events = http.watch(core(ns, "configmaps"), {"resourceVersion": since, "timeoutSeconds": "5"}, count=2)
    assert [(e["type"], e["object"]["code"]) for e in events] == [("ERROR", 410)]


def test_idle_watch_gets_bookmarks_when_allowed(emulator: KubeEmulator, http: Http, ns: str) -> None:
    emulator.bookmark_interval = 0.2
    since = http.ok("GET", core(ns, "configmaps"))["metadata"]["resourceVersion"]
    query = {"resourceVersion": since, "allowWatchBookmarks": "true", "timeoutSeconds": "5"}
    events = http.watch(core(ns, "configmaps"), query, count=1)
    assert [(e["type"], e["object"]["metadata"]["resourceVersion"]) for e in events] == [("BOOKMARK", since)]


def test_watch_with_initial_events_ends_them_with_a_bookmark(emulator: KubeEmulator, http: Http, ns: str) -> None:
    http.ok("POST", core(ns, "configmaps"), configmap("a"))
    query = {"sendInitialEvents": "true", "resourceVersionMatch": "NotOlderThan", "allowWatchBookmarks": "true"}
    events = http.watch(core(ns, "configmaps"), {**query, "timeoutSeconds": "5"}, count=2)
    assert [e["type"] for e in events] == ["ADDED", "BOOKMARK"]
    assert events[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


# ---- status subresource -----------------------------------------------------------------------------------


def test_main_resource_write_ignores_status(http: Http, ns: str) -> None:
    http.ok("POST", apps(ns, "deployments"), deployment("d"))
    patch = {"spec": {"replicas": 2}, "status": {"readyReplicas": 9}}
    patched = http.ok("PATCH", apps(ns, "deployments", "d"), patch, content_type=MERGE)
    assert patched["spec"]["replicas"] == 2
    assert patched.get("status", {}).get("readyReplicas") != 9


def test_status_write_changes_only_status_without_generation_bump(http: Http, ns: str) -> None:
    http.ok("POST", apps(ns, "deployments"), deployment("d"))
    patch = {"spec": {"replicas": 5}, "status": {"observedGeneration": 1}}
    patched = http.ok("PATCH", apps(ns, "deployments", "d/status"), patch, content_type=MERGE)
    assert patched["status"]["observedGeneration"] == 1
    assert patched["spec"]["replicas"] == 1
    assert patched["metadata"]["generation"] == 1


def test_custom_resource_status_subresource_is_isolated(cluster: Cluster, widgets: str) -> None:
    name = cluster.unique("w")
    cluster.http.ok("POST", widgets, {**widget(cluster, name, size=1), "status": {"phase": "Ignored"}})
    ignored = cluster.http.ok("PATCH", f"{widgets}/{name}", {"status": {"phase": "X"}}, content_type=MERGE)
    assert "status" not in ignored
    updated = cluster.http.ok("PATCH", f"{widgets}/{name}/status", {"status": {"phase": "Ready"}}, content_type=MERGE)
    assert updated["status"] == {"phase": "Ready"}
    assert updated["metadata"]["generation"] == 1


def test_status_put_replaces_only_status(cluster: Cluster, widgets: str) -> None:
    name = cluster.unique("w")
    created = cluster.http.ok("POST", widgets, widget(cluster, name, size=1))
    body = {**created, "spec": {"size": 7}, "status": {"phase": "Ready"}}
    replaced = cluster.http.ok("PUT", f"{widgets}/{name}/status", body)
    assert (replaced["spec"], replaced["status"]) == ({"size": 1}, {"phase": "Ready"})


def test_status_subresource_is_absent_for_kinds_without_it(http: Http, ns: str) -> None:
    http.ok("POST", core(ns, "configmaps"), configmap("a"))
    reply = http.call("PATCH", core(ns, "configmaps", "a/status"), {"status": {}}, content_type=MERGE)
    assert reply.status == 404


# ---- immutable fields -------------------------------------------------------------------------------------


def _statefulset(name: str, size: str) -> dict[str, Any]:
    body = deployment(name)
    body.update(kind="StatefulSet")
    body["spec"]["serviceName"] = name
    claim = {
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}},
    }
    body["spec"]["volumeClaimTemplates"] = [claim]
    return body


def test_statefulset_claim_templates_are_immutable(http: Http, ns: str) -> None:
    apply(http, apps(ns, "statefulsets", "s"), _statefulset("s", "1Gi"))
    reply = apply(http, apps(ns, "statefulsets", "s"), _statefulset("s", "2Gi"))
    assert reply.status == 422
    assert "Forbidden" in reply.body["message"]


def test_persistent_volume_claims_grow_but_never_shrink(http: Http, ns: str) -> None:
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "c"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2Gi"}}},
    }
    http.ok("POST", core(ns, "persistentvolumeclaims"), claim)
    grow = {"spec": {"resources": {"requests": {"storage": "3Gi"}}}}
    assert http.call("PATCH", core(ns, "persistentvolumeclaims", "c"), grow, content_type=MERGE).status == 200
    shrink = {"spec": {"resources": {"requests": {"storage": "1Gi"}}}}
    assert http.call("PATCH", core(ns, "persistentvolumeclaims", "c"), shrink, content_type=MERGE).status == 422


# ---- server-side apply ------------------------------------------------------------------------------------


def test_apply_creates_then_updates(http: Http, ns: str) -> None:
    created = apply(http, core(ns, "configmaps", "a"), configmap("a", {"k": "1"}))
    updated = apply(http, core(ns, "configmaps", "a"), configmap("a", {"k": "2"}))
    assert (created.status, updated.status) == (201, 200)
    assert updated.body["data"] == {"k": "2"}


def test_apply_of_same_body_keeps_resource_version(http: Http, ns: str) -> None:
    first = apply(http, apps(ns, "deployments", "d"), deployment("d"))
    second = apply(http, apps(ns, "deployments", "d"), deployment("d"))
    assert second.status == 200
    assert second.body["metadata"]["resourceVersion"] == first.body["metadata"]["resourceVersion"]


def test_apply_removes_fields_the_manager_stopped_applying(http: Http, ns: str) -> None:
    apply(http, core(ns, "configmaps", "a"), configmap("a", {"keep": "1", "drop": "1"}, labels={"l": "1"}))
    updated = apply(http, core(ns, "configmaps", "a"), configmap("a", {"keep": "1"}))
    assert updated.body["data"] == {"keep": "1"}
    assert not updated.body["metadata"].get("labels")


def test_apply_keeps_fields_set_by_others(http: Http, ns: str) -> None:
    apply(http, core(ns, "configmaps", "a"), configmap("a", {"mine": "1", "old": "1"}))
    http.ok("PATCH", core(ns, "configmaps", "a"), {"data": {"theirs": "1"}}, content_type=MERGE)
    updated = apply(http, core(ns, "configmaps", "a"), configmap("a", {"mine": "2"}))
    assert updated.body["data"] == {"mine": "2", "theirs": "1"}


def test_apply_removes_dropped_container_but_keeps_others_fields(http: Http, ns: str) -> None:
    body = deployment("d")
    body["spec"]["template"]["spec"]["containers"].append({"name": "side", "image": "busybox:1"})
    apply(http, apps(ns, "deployments", "d"), body)
    patch = {"metadata": {"annotations": {"team": "x"}}}
    http.ok("PATCH", apps(ns, "deployments", "d"), patch, content_type=MERGE)
    updated = apply(http, apps(ns, "deployments", "d"), deployment("d"))
    assert [c["name"] for c in updated.body["spec"]["template"]["spec"]["containers"]] == ["main"]
    assert updated.body["metadata"]["annotations"] == {"team": "x"}


def test_apply_conflict_with_another_manager_without_force(http: Http, ns: str) -> None:
    apply(http, apps(ns, "deployments", "d"), deployment("d", replicas=1), manager="first")
    reply = apply(http, apps(ns, "deployments", "d"), deployment("d", replicas=2), manager="second", force=False)
    assert reply.status == 409


def test_apply_with_force_takes_over_conflicting_fields(http: Http, ns: str) -> None:
    apply(http, apps(ns, "deployments", "d"), deployment("d", replicas=1), manager="first")
    reply = apply(http, apps(ns, "deployments", "d"), deployment("d", replicas=2), manager="second")
    assert reply.status == 200
    assert reply.body["spec"]["replicas"] == 2


def test_apply_accepts_a_yaml_body(http: Http, ns: str) -> None:
    text = f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: y\n  namespace: {ns}\ndata:\n  k: v\n"
    reply = apply(http, core(ns, "configmaps", "y"), text)
    assert reply.status == 201
    assert reply.body["data"] == {"k": "v"}


def test_apply_requires_a_field_manager(http: Http, ns: str) -> None:
    reply = http.call("PATCH", core(ns, "configmaps", "a"), configmap("a"), content_type=APPLY)
    assert reply.status == 400


# ---- owner-reference garbage collection ---------------------------------------------------------------------


def test_deleting_owner_deletes_dependents(http: Http, ns: str) -> None:
    owner = http.ok("POST", core(ns, "configmaps"), configmap("owner"))
    http.ok("POST", core(ns, "secrets"), {"metadata": {"name": "dep", "ownerReferences": [owner_ref(owner)]}})
    http.ok("DELETE", core(ns, "configmaps", "owner"), query={"propagationPolicy": "Background"})
    wait_until(lambda: gone(http, core(ns, "secrets", "dep")), 30)


def test_cluster_scoped_owner_deletes_namespaced_dependents(cluster: Cluster, widgets: str, ns: str) -> None:
    name = cluster.unique("w")
    owner = cluster.http.ok("POST", widgets, widget(cluster, name))
    dependent = configmap("dep", ownerReferences=[owner_ref(owner)])
    cluster.http.ok("POST", core(ns, "configmaps"), dependent)
    cluster.http.ok("DELETE", f"{widgets}/{name}")
    wait_until(lambda: gone(cluster.http, core(ns, "configmaps", "dep")), 30)


def test_garbage_collection_is_recursive(http: Http, ns: str) -> None:
    top = http.ok("POST", core(ns, "configmaps"), configmap("top"))
    middle = http.ok("POST", core(ns, "configmaps"), configmap("middle", ownerReferences=[owner_ref(top)]))
    http.ok("POST", core(ns, "configmaps"), configmap("bottom", ownerReferences=[owner_ref(middle)]))
    http.ok("DELETE", core(ns, "configmaps", "top"))
    wait_until(lambda: gone(http, core(ns, "configmaps", "bottom")), 30)


def test_orphan_propagation_keeps_dependents(http: Http, ns: str) -> None:
    owner = http.ok("POST", core(ns, "configmaps"), configmap("owner"))
    http.ok("POST", core(ns, "configmaps"), configmap("dep", ownerReferences=[owner_ref(owner)]))
    http.ok("DELETE", core(ns, "configmaps", "owner"), query={"propagationPolicy": "Orphan"})
    wait_until(lambda: gone(http, core(ns, "configmaps", "owner")), 30)
    wait_until(lambda: not http.ok("GET", core(ns, "configmaps", "dep"))["metadata"].get("ownerReferences"))


def test_dependent_with_another_live_owner_survives(http: Http, ns: str) -> None:
    first = http.ok("POST", core(ns, "configmaps"), configmap("first"))
    second = http.ok("POST", core(ns, "configmaps"), configmap("second"))
    refs = [owner_ref(first), owner_ref(second)]
    http.ok("POST", core(ns, "configmaps"), configmap("dep", ownerReferences=refs))
    http.ok("DELETE", core(ns, "configmaps", "first"))
    survivor = core(ns, "configmaps", "dep")
    wait_until(lambda: [r["name"] for r in http.ok("GET", survivor)["metadata"]["ownerReferences"]] == ["second"])


# ---- discovery and custom resources -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("group_version", "plural", "kind", "namespaced"),
    [
        ("v1", "namespaces", "Namespace", False),
        ("v1", "secrets", "Secret", True),
        ("v1", "configmaps", "ConfigMap", True),
        ("v1", "services", "Service", True),
        ("v1", "serviceaccounts", "ServiceAccount", True),
        ("v1", "persistentvolumeclaims", "PersistentVolumeClaim", True),
        ("v1", "resourcequotas", "ResourceQuota", True),
        ("v1", "limitranges", "LimitRange", True),
        ("v1", "events", "Event", True),
        ("v1", "pods", "Pod", True),
        ("apps/v1", "deployments", "Deployment", True),
        ("apps/v1", "statefulsets", "StatefulSet", True),
        ("batch/v1", "jobs", "Job", True),
        ("networking.k8s.io/v1", "networkpolicies", "NetworkPolicy", True),
        ("networking.k8s.io/v1", "ingresses", "Ingress", True),
        ("policy/v1", "poddisruptionbudgets", "PodDisruptionBudget", True),
        ("coordination.k8s.io/v1", "leases", "Lease", True),
        ("events.k8s.io/v1", "events", "Event", True),
        ("apiextensions.k8s.io/v1", "customresourcedefinitions", "CustomResourceDefinition", False),
    ],
)
def test_discovery_describes_resource(http: Http, group_version: str, plural: str, kind: str, namespaced: bool) -> None:
    path = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
    resources = {r["name"]: r for r in http.ok("GET", path)["resources"]}
    assert (resources[plural]["kind"], resources[plural]["namespaced"]) == (kind, namespaced)
    assert {"get", "list", "watch", "create", "patch", "delete"} <= set(resources[plural]["verbs"])


def test_discovery_lists_groups_and_versions(http: Http) -> None:
    assert "v1" in http.ok("GET", "/api")["versions"]
    groups = {g["name"]: g for g in http.ok("GET", "/apis")["groups"]}
    assert groups["apps"]["preferredVersion"]["version"] == "v1"
    assert http.ok("GET", "/apis/batch")["name"] == "batch"


def test_discovery_lists_status_subresources(http: Http) -> None:
    names = {r["name"] for r in http.ok("GET", "/apis/apps/v1")["resources"]}
    assert {"deployments/status", "statefulsets/status"} <= names


def test_version_endpoint_answers(http: Http) -> None:
    version = http.ok("GET", "/version")
    assert version["major"] == "1"
    assert version["gitVersion"].startswith("v1.")


def test_created_crd_serves_its_custom_resources(cluster: Cluster, ns: str) -> None:
    plural = f"gadgets{cluster.run_id}"
    crd = widget_crd(plural=plural, kind=f"Gadget{cluster.run_id}", scope="Namespaced")
    cluster.http.ok("POST", CRDS, crd)
    try:
        path = f"/apis/{GROUP}/v1alpha1/namespaces/{ns}/{plural}"
        wait_until(lambda: cluster.http.call("GET", path).status == 200)
        resources = {r["name"]: r for r in cluster.http.ok("GET", f"/apis/{GROUP}/v1alpha1")["resources"]}
        assert resources[plural]["namespaced"] is True
        assert f"{plural}/status" in resources
        body = {"apiVersion": f"{GROUP}/v1alpha1", "kind": crd["spec"]["names"]["kind"], "metadata": {"name": "g"}}
        assert cluster.http.ok("POST", path, body)["metadata"]["namespace"] == ns
    finally:
        cluster.http.call("DELETE", f"{CRDS}/{plural}.{GROUP}")


def test_custom_resource_list_items_carry_kind_while_builtin_items_do_not(
    cluster: Cluster, widgets: str, ns: str
) -> None:
    cluster.http.ok("POST", widgets, widget(cluster, cluster.unique("w")))
    cluster.http.ok("POST", core(ns, "configmaps"), configmap("a"))
    widget_items = cluster.http.ok("GET", widgets, query={"labelSelector": cluster.selector})
    configmap_items = cluster.http.ok("GET", core(ns, "configmaps"))["items"]
    assert widget_items["items"][0]["kind"] == "Widget"
    assert "kind" not in configmap_items[0]


# ---- emulator-only: write accounting -------------------------------------------------------------------------


def test_writes_are_recorded_per_verb(emulator: KubeEmulator, http: Http, ns: str) -> None:
    emulator.reset_counts()
    http.ok("POST", core(ns, "configmaps"), configmap("a"))
    http.ok("PUT", core(ns, "configmaps", "a"), configmap("a", {"k": "v"}))
    http.ok("PATCH", core(ns, "configmaps", "a"), {"data": {"k": "v"}}, content_type=MERGE)
    http.ok("GET", core(ns, "configmaps", "a"))
    http.ok("DELETE", core(ns, "configmaps", "a"))
    path = core(ns, "configmaps")
    assert emulator.writes() == [("POST", path), ("PUT", f"{path}/a"), ("PATCH", f"{path}/a"), ("DELETE", f"{path}/a")]
    assert emulator.write_counts() == {"POST": 1, "PUT": 1, "PATCH": 1, "DELETE": 1}
    assert emulator.count_writes("PATCH", changed_only=True) == 0  # the patch was a no-op


def test_reset_counts_forgets_earlier_writes(emulator: KubeEmulator, http: Http, ns: str) -> None:
    http.ok("POST", core(ns, "configmaps"), configmap("a"))
    emulator.reset_counts()
    assert emulator.writes() == []


def test_in_process_and_kubelet_writes_are_not_counted(emulator: KubeEmulator, ns: str) -> None:
    emulator.reset_counts()
    emulator.create({**deployment("d"), "metadata": {"name": "d", "namespace": ns}})
    emulator.kubelet.mark_ready(ns)
    assert emulator.writes() == []
    assert emulator.kubelet.writes == 1


# ---- emulator-only: fault injection --------------------------------------------------------------------------


def test_injected_fault_fails_before_the_write_takes_effect(emulator: KubeEmulator, http: Http, ns: str) -> None:
    http.ok("POST", apps(ns, "deployments"), deployment("d"))
    fault = emulator.inject_fault(method="PATCH", path_contains="/deployments", status=500, times=2)
    patch = {"spec": {"replicas": 4}}
    statuses = [http.call("PATCH", apps(ns, "deployments", "d"), patch, content_type=MERGE).status for _ in range(3)]
    assert statuses == [500, 500, 200]
    assert fault.hits == 2
    assert emulator.count_writes("PATCH", changed_only=True) == 1


def test_injected_fault_leaves_the_object_untouched(emulator: KubeEmulator, http: Http, ns: str) -> None:
    before = http.ok("POST", core(ns, "configmaps"), configmap("a"))
    emulator.inject_fault(method="PATCH", status=409, reason="Conflict")
    reply = http.call("PATCH", core(ns, "configmaps", "a"), {"data": {"k": "v"}}, content_type=MERGE)
    assert (reply.status, reply.body["reason"]) == (409, "Conflict")
    assert http.ok("GET", core(ns, "configmaps", "a")) == before


def test_injected_429_carries_retry_after(emulator: KubeEmulator, http: Http, ns: str) -> None:
    emulator.inject_fault(method="POST", path_contains="/secrets", status=429)
    reply = http.call("POST", core(ns, "secrets"), {"metadata": {"name": "s"}})
    assert reply.status == 429
    assert reply.headers["Retry-After"] == "1"
    assert gone(http, core(ns, "secrets", "s"))


def test_dropped_response_still_applies_the_write(emulator: KubeEmulator, http: Http, ns: str) -> None:
    emulator.inject_fault(method="POST", path_contains="/configmaps", drop_response=True)
    with pytest.raises(Exception):  # noqa: B017, PT011 - urllib3 reports the cut connection its own way
        http.call("POST", core(ns, "configmaps"), configmap("a"))
    assert http.ok("GET", core(ns, "configmaps", "a"))["metadata"]["name"] == "a"


@pytest.mark.parametrize("abort", [False, True])
def test_drop_watches_ends_open_streams(emulator: KubeEmulator, http: Http, ns: str, abort: bool) -> None:
    threading.Timer(0.3, emulator.drop_watches, kwargs={"abort": abort}).start()
    started = time.monotonic()
    events = http.watch(core(ns, "configmaps"), {"timeoutSeconds": "10"}, count=100, timeout=10)
    assert events == []
    assert time.monotonic() - started < 5


def test_expire_next_watch_sends_410(emulator: KubeEmulator, http: Http, ns: str) -> None:
    emulator.expire_next_watch()
    events = http.watch(core(ns, "configmaps"), {"timeoutSeconds": "5"}, count=2)
    assert [(e["type"], e["object"]["code"]) for e in events] == [("ERROR", 410)]
    assert http.watch(core(ns, "configmaps"), {"timeoutSeconds": "1"}, count=1) == []


def test_kmock_dsl_reactions_still_apply(emulator: KubeEmulator, http: Http) -> None:
    emulator["get /healthz/custom"] << b"custom"
    assert http.call("GET", "/healthz/custom").body == b"custom"


# ---- emulator-only: fake kubelet -------------------------------------------------------------------------------


def test_kubelet_marks_deployments_ready(emulator: KubeEmulator, http: Http, ns: str) -> None:
    http.ok("POST", apps(ns, "deployments"), deployment("d", replicas=3))
    assert emulator.kubelet.mark_ready(ns) == 1
    status = http.ok("GET", apps(ns, "deployments", "d"))["status"]
    assert [status[k] for k in ("replicas", "readyReplicas", "availableReplicas", "updatedReplicas")] == [3, 3, 3, 3]
    assert status["observedGeneration"] == 1
    assert emulator.kubelet.mark_ready(ns) == 0  # already ready: no further writes


def test_kubelet_creates_statefulset_claims(emulator: KubeEmulator, http: Http, ns: str) -> None:
    claim = {
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    body = deployment("db", replicas=2)
    body.update(kind="StatefulSet")
    body["spec"].update(serviceName="db", volumeClaimTemplates=[claim])
    http.ok("POST", apps(ns, "statefulsets"), body)
    emulator.kubelet.mark_ready(ns)
    claims = http.ok("GET", core(ns, "persistentvolumeclaims"))["items"]
    assert sorted(c["metadata"]["name"] for c in claims) == ["data-db-0", "data-db-1"]
    assert all("ownerReferences" not in c["metadata"] and c["status"]["phase"] == "Bound" for c in claims)
    assert http.ok("GET", apps(ns, "statefulsets", "db"))["status"]["readyReplicas"] == 2


@pytest.mark.parametrize(
    ("succeed", "condition", "count"), [(True, "Complete", "succeeded"), (False, "Failed", "failed")]
)
def test_kubelet_finishes_jobs(
    emulator: KubeEmulator, http: Http, ns: str, succeed: bool, condition: str, count: str
) -> None:
    job = {
        "metadata": {"name": "migrate"},
        "spec": {"template": {"spec": {"containers": [{"name": "m", "image": "x"}], "restartPolicy": "Never"}}},
    }
    http.ok("POST", f"/apis/batch/v1/namespaces/{ns}/jobs", job)
    emulator.kubelet.finish_jobs(ns, succeed=succeed)
    status = http.ok("GET", f"/apis/batch/v1/namespaces/{ns}/jobs/migrate")["status"]
    assert [(c["type"], c["status"]) for c in status["conditions"]] == [(condition, "True")]
    assert status[count] >= 1


def test_kubelet_auto_mode_keeps_workloads_ready_and_fails_chosen_jobs(
    emulator: KubeEmulator, http: Http, ns: str
) -> None:
    emulator.kubelet.failing_jobs = {"broken"}
    emulator.kubelet.auto = True
    http.ok("POST", apps(ns, "deployments"), deployment("d", replicas=2))
    container = {"name": "m", "image": "x"}
    for name in ("ok-job", "broken-job"):
        job = {
            "metadata": {"name": name},
            "spec": {"template": {"spec": {"containers": [container], "restartPolicy": "Never"}}},
        }
        http.ok("POST", f"/apis/batch/v1/namespaces/{ns}/jobs", job)

    def job_state(name: str) -> str | None:
        conditions = http.ok("GET", f"/apis/batch/v1/namespaces/{ns}/jobs/{name}").get("status", {}).get("conditions")
        return conditions[0]["type"] if conditions else None

    wait_until(lambda: http.ok("GET", apps(ns, "deployments", "d")).get("status", {}).get("readyReplicas") == 2, 5)
    wait_until(lambda: (job_state("ok-job"), job_state("broken-job")) == ("Complete", "Failed"), 5)
    http.ok("PATCH", apps(ns, "deployments", "d"), {"spec": {"replicas": 4}}, content_type=MERGE)
    wait_until(lambda: http.ok("GET", apps(ns, "deployments", "d"))["status"]["observedGeneration"] == 2, 5)
    emulator.kubelet.auto = False


# ---- emulator-only: in-process accessors -------------------------------------------------------------------------


def test_accessors_are_thread_safe(emulator: KubeEmulator, ns: str) -> None:
    def create_many(prefix: str) -> None:
        for index in range(20):
            emulator.create(configmap(f"{prefix}-{index}", namespace=ns))

    threads = [threading.Thread(target=create_many, args=(f"t{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    items = emulator.list("v1", "ConfigMap", ns)
    assert len(items) == 80
    assert len({rv(item) for item in items}) == 80


def test_accessors_read_and_patch_status(emulator: KubeEmulator, ns: str) -> None:
    emulator.create({**deployment("d"), "metadata": {"name": "d", "namespace": ns, "labels": {"a": "b"}}})
    emulator.patch_status("apps/v1", "Deployment", "d", {"readyReplicas": 1}, namespace=ns)
    found = emulator.get("apps/v1", "deployments", "d", namespace=ns)
    assert found is not None
    assert found["status"] == {"readyReplicas": 1}
    assert [d["metadata"]["name"] for d in emulator.list("apps/v1", "Deployment", label_selector="a=b")] == ["d"]
    assert emulator.get("apps/v1", "deployments", "missing", namespace=ns) is None


# ---- hosting ------------------------------------------------------------------------------------------------------


def test_subprocess_reaches_the_server_through_kubeconfig(cluster: Cluster, ns: str) -> None:
    script = (
        "import sys, kubernetes; kubernetes.config.load_kube_config(); "
        "print(kubernetes.client.CoreV1Api().read_namespace(sys.argv[1]).metadata.name)"
    )
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}
    done = subprocess.run([sys.executable, "-c", script, ns], env=env, capture_output=True, text=True, timeout=30)
    assert (done.returncode, done.stdout.strip()) == (0, ns), done.stderr


# ---- a real kopf operator -------------------------------------------------------------------------------------------


@pytest.mark.timeout(60)
async def test_kopf_handlers_fire_exactly_once(cluster: Cluster, widgets: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig))
    calls: collections.Counter[str] = collections.Counter()
    registry = kopf.OperatorRegistry()
    resource = (GROUP, "v1alpha1", "widgets")
    selector = {"contract.soa.test/run": cluster.run_id}

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        return kopf.login_with_kubeconfig(**kwargs)

    @kopf.on.create(*resource, registry=registry, labels=selector)
    def created(**_: Any) -> None:
        calls["create"] += 1

    @kopf.on.update(*resource, registry=registry, labels=selector)
    def updated(**_: Any) -> None:
        calls["update"] += 1

    @kopf.on.field(*resource, field="spec.size", registry=registry, labels=selector)
    def resized(old: Any, new: Any, **_: Any) -> None:
        calls[f"field {old}->{new}"] += 1

    @kopf.on.delete(*resource, registry=registry, labels=selector)
    def deleted(**_: Any) -> None:
        calls["delete"] += 1

    settings = kopf.OperatorSettings()
    settings.peering.standalone = True
    settings.posting.enabled = False
    stop, ready = asyncio.Event(), asyncio.Event()
    existing = set(asyncio.all_tasks())
    tasks = await kopf.spawn_tasks(
        registry=registry, settings=settings, clusterwide=True, standalone=True, stop_flag=stop, ready_flag=ready
    )
    operator = asyncio.create_task(kopf.run_tasks(tasks, ignored=existing))
    name = cluster.unique("w")
    path = f"{widgets}/{name}"

    async def until(predicate: Any) -> None:
        async with asyncio.timeout(20):
            while True:
                if await asyncio.to_thread(predicate):
                    return
                await asyncio.sleep(0.05)

    def handled() -> bool:
        annotations = cluster.http.ok("GET", path)["metadata"].get("annotations") or {}
        return "kopf.zalando.org/last-handled-configuration" in annotations

    try:
        await ready.wait()
        await asyncio.to_thread(cluster.http.ok, "POST", widgets, widget(cluster, name, size=1))
        await until(lambda: calls["create"] == 1 and handled())
        await asyncio.to_thread(cluster.http.ok, "PATCH", path, {"spec": {"size": 2}}, content_type=MERGE)
        await until(lambda: calls["update"] == 1 and calls["field 1->2"] == 1)
        await asyncio.to_thread(cluster.http.ok, "DELETE", path)
        await until(lambda: gone(cluster.http, path))
        await asyncio.sleep(0.5)  # room for any duplicate handling to show up
    finally:
        stop.set()
        await asyncio.wait_for(operator, 20)
    assert calls == {"create": 1, "field None->1": 1, "update": 1, "field 1->2": 1, "delete": 1}
