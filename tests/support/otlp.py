"""A tiny OTLP/HTTP (protobuf) trace receiver that keeps the spans it gets, for asserting on traces."""

from __future__ import annotations

import gzip
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue


@dataclass(frozen=True)
class SpanRecord:
    """One received span, flattened: ids as hex, attributes as plain dicts."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    service_name: str | None
    resource: dict[str, Any] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)
    scope: str = ""
    kind: int = 0
    status_code: int = 0


def any_value(value: AnyValue) -> Any:
    """An OTLP AnyValue as the matching Python value."""
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [any_value(item) for item in value.array_value.values]
    if which == "kvlist_value":
        return attributes_dict(value.kvlist_value.values)
    return getattr(value, which)


def attributes_dict(attributes: Any) -> dict[str, Any]:
    """A repeated KeyValue field as a dict."""
    pairs: list[KeyValue] = list(attributes)
    return {pair.key: any_value(pair.value) for pair in pairs}


def spans_from_request(request: ExportTraceServiceRequest) -> list[SpanRecord]:
    """Flatten an ExportTraceServiceRequest into SpanRecords."""
    records = []
    for resource_spans in request.resource_spans:
        resource = attributes_dict(resource_spans.resource.attributes)
        service = resource.get("service.name")
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                records.append(
                    SpanRecord(
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex() or None,
                        name=span.name,
                        service_name=str(service) if service is not None else None,
                        resource=dict(resource),
                        attributes=attributes_dict(span.attributes),
                        scope=scope_spans.scope.name,
                        kind=int(span.kind),
                        status_code=int(span.status.code),
                    )
                )
    return records


class OtlpReceiver:
    """Serves POST /v1/traces on a free loopback port from a background thread; use as a context manager."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._spans: list[SpanRecord] = []
        self._changed = threading.Condition()
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="otlp-receiver", daemon=True)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                encoding = (self.headers.get("Content-Encoding") or "").lower()
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                path = self.path.split("?", 1)[0]
                if path == "/v1/traces":
                    try:
                        receiver._add(spans_from_request(ExportTraceServiceRequest.FromString(body)))
                    except DecodeError:
                        self._answer(400, b"")
                        return
                    self._answer(200, ExportTraceServiceResponse().SerializeToString())
                elif path in ("/v1/metrics", "/v1/logs"):
                    self._answer(200, b"")  # accepted and dropped: an empty message is a valid response
                else:
                    self._answer(404, b"")

            def _answer(self, status: int, payload: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def start(self) -> OtlpReceiver:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> OtlpReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def endpoint(self) -> str:
        """Base URL, as for OTEL_EXPORTER_OTLP_ENDPOINT (the SDK appends /v1/traces)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def traces_endpoint(self) -> str:
        """Full URL, as for OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTLPSpanExporter(endpoint=...)."""
        return f"{self.endpoint}/v1/traces"

    def _add(self, records: list[SpanRecord]) -> None:
        with self._changed:
            self._spans.extend(records)
            self._changed.notify_all()

    def spans(self) -> list[SpanRecord]:
        """Every span received since start or the last clear(), in arrival order."""
        with self._changed:
            return list(self._spans)

    def clear(self) -> None:
        with self._changed:
            self._spans.clear()

    def wait_for(
        self, predicate: Callable[[SpanRecord], bool], timeout: float = 10.0, count: int = 1
    ) -> list[SpanRecord]:
        """Wait until at least ``count`` received spans match ``predicate``; return the matches."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                matches = [span for span in self._spans if predicate(span)]
                remaining = deadline - time.monotonic()
                if len(matches) >= count:
                    return matches
                if remaining <= 0:
                    names = sorted({span.name for span in self._spans})
                    raise AssertionError(f"{len(matches)}/{count} matching spans after {timeout}s; got {names}")
                self._changed.wait(remaining)
