"""Fixtures of the Kubernetes contract suite: the emulator by default, a real cluster with SOA_TEST_KUBECONFIG.

Everything talks HTTP through the official `kubernetes` client (ApiClient.param_serialize + call_api),
the same way the operator does, so the suite checks the emulator and a real API server alike.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import pathlib
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import kubernetes
import pytest

from tests.support.kube_emulator import KubeEmulator

REAL_CLUSTER_ENV = "SOA_TEST_KUBECONFIG"
TEST_LABEL = "contract.soa.test/run"
GROUP = "contract.soa.test"
WIDGETS = f"/apis/{GROUP}/v1alpha1/widgets"


def widget_crd(plural: str = "widgets", kind: str = "Widget", scope: str = "Cluster") -> dict[str, Any]:
    """A small CRD shaped like SOATenant: cluster-scoped, v1alpha1, with a status subresource."""
    schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": scope,
            "names": {"plural": plural, "singular": kind.lower(), "kind": kind, "listKind": f"{kind}List"},
            "versions": [
                {
                    "name": "v1alpha1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }


@dataclasses.dataclass(frozen=True)
class Reply:
    status: int
    body: Any
    headers: Mapping[str, str]


@dataclasses.dataclass
class Http:
    """Raw API calls through the official client, returning status and decoded body (never raising)."""

    api: kubernetes.client.ApiClient

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str | None = None,
        query: Mapping[str, str] | None = None,
    ) -> Reply:
        response = self._send(method, path, body, content_type, query, timeout=10)
        raw = response.read()
        decoded = json.loads(raw) if raw and raw.strip().startswith(b"{") else raw
        return Reply(response.status, decoded, dict(response.headers))

    def ok(self, method: str, path: str, body: Any = None, **kwargs: Any) -> dict[str, Any]:
        reply = self.call(method, path, body, **kwargs)
        assert 200 <= reply.status < 300, (reply.status, reply.body)
        return dict(reply.body)

    def watch(self, path: str, query: Mapping[str, str], count: int, timeout: float = 5) -> list[dict[str, Any]]:
        """Collect up to `count` watch events (fewer if the server ends the stream or `timeout` passes)."""
        response = self._send("GET", path, None, None, {"watch": "true", **query}, timeout=timeout)
        events: list[dict[str, Any]] = []
        try:
            for line in response.response:
                if line.strip():
                    events.append(json.loads(line))
                if len(events) >= count:
                    break
        except Exception:  # noqa: S110 - a read timeout just ends the collection
            pass
        finally:
            response.response.release_conn()
        return events

    def _send(
        self,
        method: str,
        path: str,
        body: Any,
        content_type: str | None,
        query: Mapping[str, str] | None,
        timeout: float,
    ) -> Any:
        headers = {"Accept": "application/json"}
        if content_type or body is not None:
            headers["Content-Type"] = content_type or "application/json"
        _, url, headers, serialized, _ = self.api.param_serialize(
            method=method,
            resource_path=path,
            query_params=list((query or {}).items()),
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        return self.api.call_api(method, url, header_params=headers, body=serialized, _request_timeout=timeout)


@dataclasses.dataclass
class Cluster:
    api: kubernetes.client.ApiClient
    http: Http
    kubeconfig: pathlib.Path
    emulator: KubeEmulator | None
    run_id: str = dataclasses.field(default_factory=lambda: uuid.uuid4().hex[:8])

    @property
    def real(self) -> bool:
        return self.emulator is None

    def unique(self, prefix: str) -> str:
        return f"{prefix}-{uuid.uuid4().hex[:8]}"

    def labels(self, **extra: str) -> dict[str, str]:
        return {TEST_LABEL: self.run_id, **extra}

    @property
    def selector(self) -> str:
        """A label selector matching what this test labelled with `labels()`."""
        return f"{TEST_LABEL}={self.run_id}"


def wait_until(predicate: Callable[[], Any], timeout: float = 10, interval: float = 0.02) -> Any:
    """Poll until the predicate is truthy (real clusters do GC and namespace cleanup asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result or time.monotonic() > deadline:
            assert result, "condition not reached in time"
            return result
        time.sleep(interval)


@pytest.fixture
def cluster(tmp_path: pathlib.Path) -> Iterator[Cluster]:
    real_kubeconfig = os.environ.get(REAL_CLUSTER_ENV)
    with contextlib.ExitStack() as stack:
        emulator: KubeEmulator | None = None
        if real_kubeconfig:
            path = pathlib.Path(real_kubeconfig)
        else:
            emulator = stack.enter_context(KubeEmulator())
            path = emulator.write_kubeconfig(tmp_path / "kubeconfig")
        api = kubernetes.config.new_client_from_config(config_file=str(path))
        stack.callback(api.close)
        cluster = Cluster(api, Http(api), path, emulator)
        yield cluster
        if cluster.real:
            _cleanup_widgets(cluster)


@pytest.fixture
def http(cluster: Cluster) -> Http:
    return cluster.http


@pytest.fixture
def emulator(cluster: Cluster) -> KubeEmulator:
    """The emulator itself, for emulator-only knobs (kubelet, faults, accounting); skipped on real clusters."""
    if cluster.emulator is None:
        pytest.skip("emulator-only behaviour")
    return cluster.emulator


@pytest.fixture
def ns(cluster: Cluster) -> Iterator[str]:
    """A fresh namespace per test, deleted afterwards on a real cluster."""
    name = cluster.unique("ct")
    cluster.http.ok("POST", "/api/v1/namespaces", {"metadata": {"name": name, "labels": cluster.labels()}})
    yield name
    if cluster.real:
        cluster.http.call("DELETE", f"/api/v1/namespaces/{name}")


@pytest.fixture
def widgets(cluster: Cluster) -> str:
    """The cluster-scoped Widget CRD (with a status subresource) installed; returns its collection path."""
    crd = widget_crd()
    reply = cluster.http.call("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    assert reply.status in (201, 409), reply.body
    wait_until(lambda: cluster.http.call("GET", WIDGETS).status == 200)
    return WIDGETS


def _cleanup_widgets(cluster: Cluster) -> None:
    """On a real cluster, remove this test's widgets, finalizers included."""
    listed = cluster.http.call("GET", WIDGETS, query={"labelSelector": cluster.selector})
    for item in listed.body.get("items", []) if listed.status == 200 else []:
        path = f"{WIDGETS}/{item['metadata']['name']}"
        patch = {"metadata": {"finalizers": None}}
        cluster.http.call("PATCH", path, patch, content_type="application/merge-patch+json")
        cluster.http.call("DELETE", path)
