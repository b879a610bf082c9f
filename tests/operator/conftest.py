"""Operator scenario fixtures: an emulated cluster with the SOATenant CRD and a real operator."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from soa_operator import labels
from soa_operator.api.crd import build_crd
from tests.support.kube_emulator import KubeEmulator
from tests.support.operator_process import OperatorProcess, wait_until

TENANT = labels.API_VERSION

WORKLOAD_KINDS = (("apps/v1", "Deployment"), ("apps/v1", "StatefulSet"))
OWNED_KINDS = (
    ("v1", "ResourceQuota"),
    ("v1", "LimitRange"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("v1", "ServiceAccount"),
    ("v1", "ConfigMap"),
    ("v1", "Service"),
    ("apps/v1", "StatefulSet"),
    ("apps/v1", "Deployment"),
    ("batch/v1", "Job"),
    ("networking.k8s.io/v1", "Ingress"),
    ("policy/v1", "PodDisruptionBudget"),
    ("v1", "Secret"),
)


def tenant_manifest(name: str = "moitt", **spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "displayName": f"Ministry {name}",
        "version": "0.1.0",
        "deletionProtection": False,
        "deletionPolicy": "Retain",
    }
    base.update(spec)
    return {"apiVersion": TENANT, "kind": labels.KIND, "metadata": {"name": name}, "spec": base}


class Cluster:
    """Test-side view of the emulated cluster, in the IT board's and the SRE's terms."""

    def __init__(self, kube: KubeEmulator) -> None:
        self.kube = kube

    def create_tenant(self, name: str = "moitt", **spec: Any) -> dict[str, Any]:
        return self.kube.create(tenant_manifest(name, **spec))

    def provision(self, name: str = "moitt", **spec: Any) -> dict[str, Any]:
        """Create a tenant with the fake kubelet running and wait until it is Ready."""
        self.kube.kubelet.auto = True
        self.create_tenant(name, **spec)
        return self.wait_phase("Ready", name)

    def tenant(self, name: str = "moitt") -> dict[str, Any] | None:
        return self.kube.get(TENANT, labels.PLURAL, name)

    def status(self, name: str = "moitt") -> dict[str, Any]:
        return dict((self.tenant(name) or {}).get("status") or {})

    def condition(self, ctype: str, name: str = "moitt") -> dict[str, Any]:
        return next((c for c in self.status(name).get("conditions") or [] if c["type"] == ctype), {})

    def patch_spec(self, name: str = "moitt", **spec: Any) -> None:
        self.kube.patch(TENANT, labels.PLURAL, name, {"spec": spec})

    def delete_tenant(self, name: str = "moitt") -> None:
        self.kube.delete(TENANT, labels.PLURAL, name)

    def wait_phase(self, phase: str, name: str = "moitt", timeout: float = 30.0) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            obj = self.tenant(name)
            status = (obj or {}).get("status") or {}
            current = status.get("observedGeneration") == (obj or {}).get("metadata", {}).get("generation")
            return obj if current and status.get("phase") == phase else None

        return wait_until(reached, timeout, what=f"{name} phase {phase} (now {self.status(name).get('phase')})")

    def namespaced(self, api_version: str, kind: str, name: str = "moitt") -> list[dict[str, Any]]:
        return self.kube.list(api_version, kind, namespace=f"soa-{name}")

    def owned_objects(self, name: str = "moitt") -> list[dict[str, Any]]:
        return [obj for av, kind in OWNED_KINDS for obj in self.namespaced(av, kind, name)]

    def secrets_data(self, name: str = "moitt") -> dict[str, dict[str, str]]:
        return {
            s["metadata"]["name"]: copy.deepcopy(s.get("data") or {}) for s in self.namespaced("v1", "Secret", name)
        }

    def operator_writes(self) -> list[tuple[str, str]]:
        """Writes sent over HTTP (the operator's; the fake kubelet and test helpers bypass HTTP)."""
        return [(r.method, r.path) for r in self.kube.write_records() if r.status < 400]


@pytest.fixture
def cluster(kube: KubeEmulator) -> Cluster:
    kube.install_crd(build_crd())
    return Cluster(kube)


@pytest.fixture
def operator_factory(
    kube_kubeconfig: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[type[OperatorProcess]]:
    started: list[OperatorProcess] = []

    def make(**env: str) -> OperatorProcess:
        proc = OperatorProcess(kube_kubeconfig, tmp_path / f"operator-{len(started)}.log", env).start()
        started.append(proc)
        return proc

    yield make  # type: ignore[misc]
    for proc in started:
        proc.stop()
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        for proc in started:
            print(f"--- {proc.log_path.name} ---\n{proc.log_text()[-6000:]}")


@pytest.fixture
def operator(operator_factory: Any) -> OperatorProcess:
    return operator_factory()  # type: ignore[no-any-return]


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    report = yield
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]
    return report
