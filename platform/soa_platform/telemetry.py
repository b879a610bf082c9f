"""OpenTelemetry for every platform process: one setup per process kind.

Configured by the standard `OTEL_*` variables (endpoint, protocol, sampler, resource attributes);
adds `service.name` and `soa.tenant`. Health checks are never traced.
"""

from __future__ import annotations

import os
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from soa_platform.settings import PlatformSettings

HEALTH_URLS = "healthz,readyz"
_provider: TracerProvider | None = None


def exporting(exporter: SpanExporter | None = None) -> bool:
    """Whether spans would go anywhere: without an exporter, tracing is skipped entirely (it costs the api
    about a sixth of its CPU — docs/performance.md)."""
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    return exporter is not None or bool(endpoint)


def setup_tracing(
    service_name: str, settings: PlatformSettings, *, exporter: SpanExporter | None = None
) -> TracerProvider | None:
    """Install the process's tracer provider (idempotent) with an OTLP exporter; None when nothing exports."""
    global _provider
    if _provider is not None or not exporting(exporter):
        return _provider
    resource = Resource.create(
        {"service.name": os.environ.get("OTEL_SERVICE_NAME", service_name), "soa.tenant": settings.tenant}
    )
    provider = TracerProvider(resource=resource)
    processor: SpanProcessor = (
        BatchSpanProcessor(exporter, schedule_delay_millis=200)
        if exporter is not None
        else BatchSpanProcessor(_otlp_exporter(), schedule_delay_millis=500)
    )
    provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    _provider = provider
    _instrument_libraries()
    return provider


def _otlp_exporter() -> SpanExporter:
    if os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf") == "grpc":
        raise RuntimeError("OTEL_EXPORTER_OTLP_PROTOCOL=grpc is not installed; use http/protobuf (port 4318)")
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def _instrument_libraries() -> None:
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.instrumentation.urllib3 import URLLib3Instrumentor

    RedisInstrumentor().instrument()
    CeleryInstrumentor().instrument()  # type: ignore[no-untyped-call]
    URLLib3Instrumentor().instrument()  # the S3 calls of the minio SDK


def instrument_engine(engine: Any) -> None:
    """Trace SQL of one SQLAlchemy async engine (only once tracing is set up)."""
    if _provider is None:
        return
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine, enable_commenter=False)


def instrument_app(app: Any) -> None:
    if _provider is None:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, excluded_urls=HEALTH_URLS)


def shutdown_tracing() -> None:
    if _provider is not None:
        _provider.force_flush()
        _provider.shutdown()
