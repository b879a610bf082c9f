"""A fake kubelet + controller-manager for the Kubernetes emulator: makes workloads ready, finishes Jobs.

It writes straight into the object store (not over HTTP), so its writes never appear in the
emulator's request/write accounting; `FakeKubelet.writes` counts them separately.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from tests.support.kube_emulator_resources import ResourceType
from tests.support.kube_emulator_store import Change, ObjectStore, now

WORKLOADS = {("apps", "deployments"), ("apps", "statefulsets"), ("batch", "jobs")}


class FakeKubelet:
    """Marks Deployments/StatefulSets ready and Jobs finished, on demand or continuously (`auto`)."""

    def __init__(self, store: ObjectStore) -> None:
        self._store = store
        self.failing_jobs: set[str] = set()  # in auto mode, Jobs whose names contain one of these fail
        self.writes = 0
        self.interval = 0.05
        self._wake = threading.Event()
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None
        store.hooks.append(self._on_change)

    def _type(self, group: str, version: str, plural: str) -> ResourceType:
        rtype = self._store.registry.lookup(group, version, plural)
        assert rtype is not None
        return rtype

    # ---- one-shot actions --------------------------------------------------------------------------

    def mark_ready(self, namespace: str | None = None) -> int:
        """Report every Deployment and StatefulSet (in a namespace or everywhere) as fully ready."""
        changed = 0
        with self._store.lock:
            for body in self._live(self._type("apps", "v1", "deployments"), namespace):
                changed += self._set_status(self._type("apps", "v1", "deployments"), body, _deployment_status(body))
            statefulsets = self._type("apps", "v1", "statefulsets")
            for body in self._live(statefulsets, namespace):
                changed += self._create_claims(body)
                changed += self._set_status(statefulsets, body, _statefulset_status(body))
        return changed

    def finish_jobs(self, namespace: str | None = None, succeed: bool = True, name_contains: str | None = None) -> int:
        """Complete (or fail) every unfinished, unsuspended Job, optionally only names containing a substring."""
        return self._finish_jobs(namespace, lambda name: succeed, name_contains)

    def reconcile(self) -> int:
        """One pass of the automatic mode: workloads ready, Jobs finished (those in `failing_jobs` fail)."""
        with self._store.lock:
            changed = self.mark_ready()
            return changed + self._finish_jobs(None, lambda name: not any(p in name for p in self.failing_jobs))

    def _finish_jobs(
        self, namespace: str | None, succeeds: Callable[[str], bool], name_contains: str | None = None
    ) -> int:
        changed = 0
        jobs = self._type("batch", "v1", "jobs")
        with self._store.lock:
            for body in self._live(jobs, namespace):
                name = body["metadata"]["name"]
                if name_contains is not None and name_contains not in name:
                    continue
                if _finished(body) or body.get("spec", {}).get("suspend"):
                    continue
                changed += self._set_status(jobs, body, _job_status(body, succeeds(name)))
        return changed

    def _live(self, rtype: ResourceType, namespace: str | None) -> list[dict[str, Any]]:
        items, _ = self._store.select(rtype, namespace, [], [])
        return [body for body in items if not body["metadata"].get("deletionTimestamp")]

    def _set_status(self, rtype: ResourceType, body: dict[str, Any], status: dict[str, Any]) -> int:
        meta = body["metadata"]
        patch = {"status": status}
        result = self._store.patch(rtype, meta.get("namespace"), meta["name"], "merge", patch, subresource="status")
        self.writes += result.changed
        return int(result.changed)

    def _create_claims(self, statefulset: dict[str, Any]) -> int:
        """Create `<template>-<sts>-<ordinal>` claims like the StatefulSet controller (no owner refs)."""
        claims = self._type("", "v1", "persistentvolumeclaims")
        spec, meta = statefulset.get("spec", {}), statefulset["metadata"]
        selector = spec.get("selector", {}).get("matchLabels", {})
        created = 0
        for template in spec.get("volumeClaimTemplates") or []:
            for ordinal in range(spec.get("replicas", 1)):
                name = f"{template['metadata']['name']}-{meta['name']}-{ordinal}"
                if self._store.find(claims, meta["namespace"], name) is not None:
                    continue
                labels = {**(template["metadata"].get("labels") or {}), **selector}
                claim = {
                    "metadata": {"name": name, "namespace": meta["namespace"], "labels": labels},
                    "spec": template.get("spec", {}),
                }
                body = self._store.create(claims, meta["namespace"], claim).body
                self.writes += 1
                created += 1 + self._set_status(claims, body, _claim_status(template.get("spec", {})))
        return created

    # ---- automatic mode ----------------------------------------------------------------------------

    @property
    def auto(self) -> bool:
        return self._thread is not None

    @auto.setter
    def auto(self, enabled: bool) -> None:
        if enabled:
            self.start()
        else:
            self.stop()

    def start(self, interval: float | None = None) -> None:
        """Keep reconciling in a background thread: on every workload change, and every `interval`."""
        self.interval = interval if interval is not None else self.interval
        if self._thread is None:
            self._halt.clear()
            self._thread = threading.Thread(target=self._loop, name="fake-kubelet", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._halt.set()
            self._wake.set()
            thread.join(timeout=5)

    def _on_change(self, change: Change) -> None:
        if change.store_key in WORKLOADS:
            self._wake.set()

    def _loop(self) -> None:
        while not self._halt.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            if not self._halt.is_set():
                self.reconcile()


def _keep_times(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Reuse old conditions with the same type and status, so that repeated passes are no-ops."""
    previous = {(c.get("type"), c.get("status")): c for c in old}
    return [previous.get((c["type"], c["status"]), c) for c in new]


def _condition(kind: str, reason: str, message: str = "") -> dict[str, Any]:
    timestamp = now()
    return {
        "type": kind,
        "status": "True",
        "reason": reason,
        "message": message,
        "lastUpdateTime": timestamp,
        "lastTransitionTime": timestamp,
    }


def _deployment_status(body: dict[str, Any]) -> dict[str, Any]:
    replicas = body.get("spec", {}).get("replicas", 1)
    conditions = [
        _condition("Available", "MinimumReplicasAvailable"),
        _condition("Progressing", "NewReplicaSetAvailable"),
    ]
    return {
        "observedGeneration": body["metadata"].get("generation", 1),
        "replicas": replicas,
        "updatedReplicas": replicas,
        "readyReplicas": replicas,
        "availableReplicas": replicas,
        "conditions": _keep_times(body.get("status", {}).get("conditions", []), conditions),
    }


def _statefulset_status(body: dict[str, Any]) -> dict[str, Any]:
    replicas = body.get("spec", {}).get("replicas", 1)
    revision = f"{body['metadata']['name']}-{body['metadata'].get('generation', 1)}"
    return {
        "observedGeneration": body["metadata"].get("generation", 1),
        "replicas": replicas,
        "readyReplicas": replicas,
        "currentReplicas": replicas,
        "updatedReplicas": replicas,
        "availableReplicas": replicas,
        "currentRevision": revision,
        "updateRevision": revision,
        "collisionCount": 0,
    }


def _finished(job: dict[str, Any]) -> bool:
    conditions = job.get("status", {}).get("conditions") or []
    return any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True" for c in conditions)


def _job_status(job: dict[str, Any], succeed: bool) -> dict[str, Any]:
    spec, timestamp = job.get("spec", {}), now()
    if succeed:
        condition = _condition("Complete", "Completed")
        counts = {"succeeded": spec.get("completions", 1), "completionTime": timestamp}
    else:
        condition = _condition("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")
        counts = {"failed": spec.get("backoffLimit", 6) + 1}
    condition["lastProbeTime"] = condition.pop("lastUpdateTime")
    return {"startTime": timestamp, "active": 0, "ready": 0, **counts, "conditions": [condition]}


def _claim_status(spec: dict[str, Any]) -> dict[str, Any]:
    storage = spec.get("resources", {}).get("requests", {}).get("storage", "1Gi")
    return {
        "phase": "Bound",
        "accessModes": spec.get("accessModes", ["ReadWriteOnce"]),
        "capacity": {"storage": storage},
    }
