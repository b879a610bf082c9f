"""Observability of the operator: a span per reconcile, Prometheus metrics, JSON logs."""

from __future__ import annotations

import json
import socket
import urllib.request
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from soa_operator.kube.client import KubeClient
from soa_operator.reconcile.tenant import TenantReconciler
from soa_operator.settings import OperatorSettings
from tests.operator.conftest import Cluster
from tests.support.operator_process import OperatorProcess, wait_until

_EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module")
def spans() -> InMemorySpanExporter:
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
    return _EXPORTER


@pytest.fixture
def reconciler(cluster: Cluster, kube_kubeconfig: Any) -> TenantReconciler:
    return TenantReconciler(KubeClient.from_environment(str(kube_kubeconfig)), OperatorSettings())


def test_each_reconcile_is_one_span_tagged_with_its_tenant(
    cluster: Cluster, reconciler: TenantReconciler, spans: InMemorySpanExporter
) -> None:
    spans.clear()
    tenant = cluster.create_tenant()
    outcome = reconciler.reconcile(tenant)
    finished = [s for s in spans.get_finished_spans() if s.name == "soa.reconcile"]
    assert len(finished) == 1
    attributes = dict(finished[0].attributes or {})
    assert attributes["soa.tenant"] == "moitt"
    assert attributes["soa.phase"] == "Provisioning"
    assert attributes["soa.writes"] == len(outcome.applied) > 0


def test_a_second_reconcile_of_an_unchanged_tenant_writes_nothing(
    cluster: Cluster, reconciler: TenantReconciler
) -> None:
    cluster.create_tenant()
    reconciler.reconcile(cluster.tenant() or {})
    again = reconciler.reconcile(cluster.tenant() or {})
    assert again.applied == again.pruned == again.created_secrets == []
    assert not again.status_written


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())


def test_metrics_report_tenants_by_phase_writes_by_verb_and_reconcile_time(
    cluster: Cluster, operator_factory: Any
) -> None:
    port = _free_port()
    operator_factory(SOA_OPERATOR_METRICS_PORT=str(port))
    cluster.provision()

    def ready_reported() -> str | None:
        text = _metrics(port)
        return text if 'soa_operator_tenants{phase="Ready"} 1.0' in text else None

    text = wait_until(ready_reported, what="Ready tenant in /metrics")
    assert 'soa_operator_api_writes_total{verb="apply"}' in text
    assert 'soa_operator_api_writes_total{verb="create"} 4.0' in text
    assert "soa_operator_reconcile_duration_seconds_count" in text


def test_logs_are_json_lines_naming_the_tenant(cluster: Cluster, operator: OperatorProcess) -> None:
    cluster.provision()
    records = [json.loads(line) for line in operator.log_text().splitlines() if line.startswith("{")]
    assert records, operator.log_text()[:2000]
    reconciled = [r for r in records if r["message"].startswith("reconciled")]
    assert reconciled
    assert reconciled[0]["tenant"] == "moitt"
    assert reconciled[0]["applied"] > 0
    assert all("settings" not in r for r in records)
