"""Prometheus metrics: request latency by route template and committed messages, on their own port."""

from __future__ import annotations

import httpx
from prometheus_client import REGISTRY

from soa_platform import metrics
from tests.platform.harness import Tenant
from tests.support.processes import free_port


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


async def test_requests_are_timed_by_route_template_and_messages_counted(tenant: Tenant) -> None:
    user = await tenant.user()
    labels = {"method": "GET", "route": "/v1/conversations/{conversation_id}", "status": "404"}
    before = sample("soa_http_request_duration_seconds_count", labels)
    messages_before = sample("soa_messages_created_total")
    await tenant.client.get("/v1/conversations/12345", headers=user.headers)
    assert sample("soa_http_request_duration_seconds_count", labels) == before + 1
    channel = await tenant.client.post("/v1/conversations", json={"kind": "public", "name": "m"}, headers=user.headers)
    await tenant.client.post(
        f"/v1/conversations/{channel.json()['id']}/messages",
        json={"body": "counted", "idempotency_key": "m1"},
        headers=user.headers,
    )
    assert sample("soa_messages_created_total") == messages_before + 1


def test_metrics_are_served_on_their_own_port() -> None:
    port = free_port()
    metrics.serve(port, host="127.0.0.1")
    text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    assert "soa_http_request_duration_seconds" in text
