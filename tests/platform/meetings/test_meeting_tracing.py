"""A join or moderation request and the Janus calls it makes are one trace."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import propagate
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from soa_platform.meetings.janus import JanusController
from tests.platform.harness import Tenant
from tests.platform.meetings.meeting_client import create_meeting
from tests.support.janus_server import JanusServer


def _traced(headers: dict[str, str]) -> dict[str, str]:
    carrier = dict(headers)
    propagate.inject(carrier)
    return carrier


@pytest.fixture
def traced(tenant: Tenant, janus: JanusServer) -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    """The tenant's controller reporting to an in-memory exporter."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    original = tenant.platform.meetings
    tenant.platform.meetings = JanusController(
        janus.url, janus.admin_url, janus.api_secret, janus.admin_secret, tracer_provider=provider
    )
    yield provider, exporter
    tenant.platform.meetings = original
    provider.shutdown()


async def test_a_join_and_a_removal_trace_their_janus_calls(
    tenant: Tenant, traced: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = traced
    host, guest = await tenant.user("host"), await tenant.user("guest")
    meeting = await create_meeting(tenant, host, invitee_ids=[guest.id])
    tracer = provider.get_tracer("test")
    # the client's span travels in `traceparent`, as from a browser or the ingress: FastAPI's own server span
    # (recorded whenever the process has a tracer provider) starts from the request's headers
    with tracer.start_as_current_span("POST /v1/meetings/{meeting_id}/join") as join_span:
        response = await tenant.client.post(f"/v1/meetings/{meeting['id']}/join", headers=_traced(guest.headers))
        assert response.status_code == 200, response.text
        joined = response.json()
    with tracer.start_as_current_span("DELETE /v1/meetings/{meeting_id}/participants/{id}") as remove_span:
        response = await tenant.client.delete(
            f"/v1/meetings/{meeting['id']}/participants/{joined['participant_id']}", headers=_traced(host.headers)
        )
        assert response.status_code == 204
    await tenant.platform.meetings.close()  # type: ignore[union-attr]
    spans = exporter.get_finished_spans()
    by_trace: dict[int, set[str]] = {}
    for span in spans:
        by_trace.setdefault(span.context.trace_id, set()).add(span.name)
    joined_names = by_trace[join_span.get_span_context().trace_id]
    assert {"janus ensure_room", "janus videoroom exists", "janus videoroom create", "janus allowed add",
            "janus admin add_token", "janus videoroom allowed"} <= joined_names  # fmt: skip
    removed_names = by_trace[remove_span.get_span_context().trace_id]
    assert {"janus allowed remove", "janus admin remove_token", "janus disconnect"} <= removed_names
    ensure = next(s for s in spans if s.name == "janus ensure_room")
    assert ensure.parent is not None  # under the request's span (or FastAPI's spans of it), never a root
    assert ensure.context.trace_id == join_span.get_span_context().trace_id
    assert next(s for s in spans if s.name == "janus videoroom create").kind is SpanKind.CLIENT
    assert all("secret" not in str(dict(s.attributes or {})).lower() for s in spans)
