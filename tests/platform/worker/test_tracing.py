"""A task enqueued inside a request's span continues that trace in the worker (W3C trace context)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.instrumentation.celery import CeleryInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from soa_platform.worker import CeleryDispatcher
from tests.platform.worker.conftest import WorkerEnv
from tests.support.otlp import OtlpReceiver


@pytest.fixture
def api_spans() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    """This process as the api: its own tracer provider, and Celery instrumented to publish with it."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = CeleryInstrumentor()  # type: ignore[no-untyped-call]
    was_instrumented = instrumentor.is_instrumented_by_opentelemetry
    if was_instrumented:
        instrumentor.uninstrument()
    instrumentor.instrument(tracer_provider=provider)
    yield provider, exporter
    instrumentor.uninstrument()
    if was_instrumented:
        instrumentor.instrument()
    provider.shutdown()


async def test_the_worker_task_span_joins_the_publishing_trace(
    worker_env: WorkerEnv,
    otlp_receiver: OtlpReceiver,
    dispatcher: CeleryDispatcher,
    api_spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = api_spans
    worker_env.start_worker(OTEL_EXPORTER_OTLP_ENDPOINT=otlp_receiver.endpoint)

    with provider.get_tracer("test").start_as_current_span("POST /v1/messages") as request_span:
        await dispatcher.send("soa.audit.export", 424242)  # no such export: the task runs and returns
    trace_id = format(request_span.get_span_context().trace_id, "032x")

    (task_span,) = otlp_receiver.wait_for(
        lambda span: span.name == "run/soa.audit.export" and span.trace_id == trace_id, timeout=15
    )
    assert task_span.service_name == "soa-worker"
    (publish,) = [span for span in exporter.get_finished_spans() if span.name == "apply_async/soa.audit.export"]
    assert publish.parent is not None
    assert publish.parent.span_id == request_span.get_span_context().span_id
    assert task_span.parent_span_id == format(publish.context.span_id, "016x")
    sql = otlp_receiver.wait_for(lambda span: span.trace_id == trace_id and span.parent_span_id == task_span.span_id)
    assert sql, "the task's SQL spans nest under the task span"
