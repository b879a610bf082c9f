"""One trace id spans a request, its SQL, and the Celery task it enqueued, across the api and worker processes."""

from __future__ import annotations

import asyncio

import httpx

from soa_platform.notifications.service import mention_key
from tests.platform.system.conftest import TENANT, Stack
from tests.platform.worker.webhook import WebhookReceiver
from tests.support.otlp import OtlpReceiver, SpanRecord

ROUTE = "/v1/conversations/{conversation_id}/messages"
DELIVER = "run/soa.notifications.deliver"
SERVER = 2  # SpanKind.SPAN_KIND_SERVER in OTLP


def sql(span: SpanRecord) -> bool:
    return span.attributes.get("db.system") == "postgresql"


def descends_from(span: SpanRecord, ancestor: SpanRecord, spans: list[SpanRecord]) -> bool:
    by_id = {item.span_id: item for item in spans if item.trace_id == span.trace_id}
    parent = span.parent_span_id
    while parent is not None:
        if parent == ancestor.span_id:
            return True
        parent = by_id[parent].parent_span_id if parent in by_id else None
    return False


async def test_a_posted_mention_is_one_trace_from_request_to_database_to_task(
    stack: Stack, otlp_receiver: OtlpReceiver
) -> None:
    stack.env.update(OTEL_EXPORTER_OTLP_ENDPOINT=otlp_receiver.endpoint, OTEL_TRACES_SAMPLER="always_on")
    with WebhookReceiver() as webhook:
        stack.env["SOA_NOTIFICATION_WEBHOOK_URL"] = webhook.url
        alice, bob = await stack.members("alice", "bob")
        await stack.start_api()
        await stack.start_worker()
        async with httpx.AsyncClient(base_url=stack.base_url, timeout=30) as client:
            channel = {"kind": "public", "name": "general", "member_ids": [bob.id]}
            created = await client.post("/v1/conversations", json=channel, headers=alice.headers)
            conversation_id = created.json()["id"]
            otlp_receiver.clear()
            assert (await client.get("/healthz")).status_code == 200
            message = {"body": f"see <@{bob.id}>", "idempotency_key": "traced"}
            posted = await client.post(
                f"/v1/conversations/{conversation_id}/messages", json=message, headers=alice.headers
            )
        assert posted.status_code == 201, posted.text
        await asyncio.to_thread(webhook.wait_for_requests, 1)
        assert webhook.effects == {mention_key(posted.json()["id"], bob.id): 1}

    (request,) = await asyncio.to_thread(
        otlp_receiver.wait_for, lambda span: span.kind == SERVER and span.attributes.get("http.route") == ROUTE, 30
    )
    (task,) = await asyncio.to_thread(
        otlp_receiver.wait_for, lambda span: span.name == DELIVER and span.trace_id == request.trace_id, 30
    )
    await asyncio.to_thread(
        otlp_receiver.wait_for,
        lambda span: span.trace_id == request.trace_id and sql(span) and span.service_name == "soa-worker",
        30,
    )
    spans = [span for span in otlp_receiver.spans() if span.trace_id == request.trace_id]

    assert request.name == f"POST {ROUTE}"
    assert (request.service_name, request.resource["soa.tenant"]) == ("soa-api", TENANT)
    assert request.parent_span_id is None  # the client sent no trace context: the request starts the trace
    # one request span: FastAPI's own telemetry stands aside for the OpenTelemetry instrumentation (with both,
    # the inner one would record the same request again as an internal span)
    assert [span for span in spans if span.kind == SERVER or span.name == request.name] == [request]
    api_sql = [span for span in spans if sql(span) and span.service_name == "soa-api"]
    assert api_sql
    assert all(descends_from(span, request, spans) for span in api_sql)
    assert (task.service_name, task.resource["soa.tenant"]) == ("soa-worker", TENANT)
    assert descends_from(task, request, spans)  # through the publish span the api's Celery client made
    task_sql = [span for span in spans if sql(span) and span.service_name == "soa-worker"]
    assert task_sql
    assert all(descends_from(span, task, spans) for span in task_sql)
    assert not [span for span in otlp_receiver.spans() if health_check(span)]


def health_check(span: SpanRecord) -> bool:
    paths = {span.attributes.get(name) for name in ("http.target", "url.path", "http.route")}
    return bool(paths & {"/healthz", "/readyz"}) or "/healthz" in span.name or "/readyz" in span.name
