"""End-to-end against a real kind/k3s cluster: `SOA_TEST_KUBECONFIG=~/.kube/config pytest -m cluster`.

Every test here is marked `cluster` and skipped unless SOA_TEST_KUBECONFIG names a kubeconfig.
All waits live in this file.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from soa_operator import labels
from soa_operator.api.crd import build_crd
from soa_operator.kube.client import KubeClient
from tests.support.operator_process import OperatorProcess

KUBECONFIG = os.environ.get("SOA_TEST_KUBECONFIG")
PROVISION_TIMEOUT = 120.0
CRD_ESTABLISH_TIMEOUT = 30.0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    skip = pytest.mark.skip(reason="needs a real cluster: set SOA_TEST_KUBECONFIG")
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.cluster)
            if not KUBECONFIG:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def real_cluster() -> KubeClient:
    assert KUBECONFIG
    client = KubeClient.from_environment(KUBECONFIG)
    client.apply(build_crd())
    return client


@pytest.fixture
def tenant_name(real_cluster: KubeClient) -> Iterator[str]:
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    yield name
    real_cluster.merge_patch(labels.API_VERSION, labels.KIND, name, {"spec": {"deletionProtection": False}})
    real_cluster.delete(labels.API_VERSION, labels.KIND, name)


@pytest.fixture
def real_operator(real_cluster: KubeClient, tmp_path: Path) -> Iterator[OperatorProcess]:
    assert KUBECONFIG
    proc = OperatorProcess(Path(KUBECONFIG), tmp_path / "operator.log").start()
    yield proc
    proc.stop()
