"""Traces, metrics and logs of the operator: one setup per process."""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from prometheus_client import Counter, Gauge, Histogram, start_http_server

RECONCILE_SECONDS = Histogram(
    "soa_operator_reconcile_duration_seconds",
    "Wall time of one tenant reconcile.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
RECONCILE_ERRORS = Counter("soa_operator_reconcile_errors_total", "Reconciles that hit an API error.")
TENANTS_BY_PHASE = Gauge("soa_operator_tenants", "Tenants by phase.", ["phase"])
API_WRITES = Counter("soa_operator_api_writes_total", "Writes the operator sent to the API server.", ["verb"])


def count_write(verb: str) -> None:
    API_WRITES.labels(verb=verb).inc()


def start_metrics(port: int) -> None:
    if port:
        start_http_server(port, addr="0.0.0.0")  # noqa: S104 - scraped from the observability namespace


def setup_tracing(service_name: str = "soa-operator") -> None:
    """OTLP export when the standard OTEL_* variables point somewhere; a no-op provider otherwise."""
    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)


class JsonFormatter(logging.Formatter):
    """One JSON object per line; only the message and the fields passed as ``extra``."""

    _skip = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "settings", "k8s_skip"}

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in record.__dict__.items() if k not in self._skip and not k.startswith("_")})
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info).splitlines()[-1]
        return json.dumps(entry, default=str)


def setup_logging(fmt: str, level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if fmt == "json" else logging.Formatter("%(asctime)s %(levelname)s %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # kopf logs every successful wake-up handler at INFO: one line per child event, pure noise.
    logging.getLogger("kopf.objects").setLevel(level if level < logging.INFO else logging.WARNING)
