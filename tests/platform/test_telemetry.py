"""Tracing is set up only where spans are exported: unexported spans would cost the api CPU for nothing."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from soa_platform import telemetry
from tests.platform.harness import tenant_settings


def test_tracing_is_skipped_without_an_exporter(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_SDK_DISABLED"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(telemetry, "_provider", None)
    assert telemetry.exporting() is False
    assert telemetry.setup_tracing("soa-api", tenant_settings("alpha", "sqlite+aiosqlite://", None)) is None


def test_an_endpoint_or_exporter_enables_tracing_unless_the_sdk_is_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_SDK_DISABLED", raising=False)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    assert telemetry.exporting() is True
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert telemetry.exporting() is False
    monkeypatch.delenv("OTEL_SDK_DISABLED")
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT")
    assert telemetry.exporting(InMemorySpanExporter()) is True
