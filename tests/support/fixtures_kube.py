"""pytest fixtures for the Kubernetes emulator.

Wire them in with one line in tests/conftest.py::

    pytest_plugins = ["tests.support.fixtures_kube"]

`kube` is a fresh emulator per test (≈2 ms to start), served from a background thread, so it works
for sync tests, async tests (its accessors never block on the test's event loop) and subprocesses.
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import kubernetes
import pytest

from tests.support.kube_emulator import KubeEmulator


@pytest.fixture
def kube() -> Iterator[KubeEmulator]:
    """A fresh, running emulator; its fake kubelet is stopped at teardown."""
    with KubeEmulator() as emulator:
        yield emulator


@pytest.fixture
def kube_kubeconfig(kube: KubeEmulator, tmp_path: pathlib.Path) -> pathlib.Path:
    """A kubeconfig file pointing at `kube` (for KUBECONFIG=..., kopf logins, subprocesses)."""
    return kube.write_kubeconfig(tmp_path / "kubeconfig")


@pytest.fixture
def kube_env(kube_kubeconfig: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> pathlib.Path:
    """Like `kube_kubeconfig`, and also exported as KUBECONFIG for this test."""
    monkeypatch.setenv("KUBECONFIG", str(kube_kubeconfig))
    return kube_kubeconfig


@pytest.fixture
def kube_api(kube_kubeconfig: pathlib.Path) -> Iterator[kubernetes.client.ApiClient]:
    """An official-client ApiClient configured from `kube_kubeconfig`."""
    api = kubernetes.config.new_client_from_config(config_file=str(kube_kubeconfig))  # type: ignore[no-untyped-call]
    try:
        yield api
    finally:
        api.close()
