"""Prometheus metrics of the api process, served on their own port (SOA_METRICS_PORT) so the public
listener has no unauthenticated endpoint besides the health checks."""

from __future__ import annotations

import time

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter, Histogram, multiprocess, start_http_server
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUESTS = Histogram(
    "soa_http_request_duration_seconds",
    "API request latency by route template",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5),
)
MESSAGES = Counter("soa_messages_created_total", "Messages committed")


def instrument(app: FastAPI) -> None:
    # a plain ASGI middleware: Starlette's BaseHTTPMiddleware (`@app.middleware`) runs every request
    # through an extra task and memory stream, a measurable share of a small request's CPU
    app.add_middleware(RequestMetrics)


class RequestMetrics:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server answers when the app raises before starting a response

        async def observe_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observe_status)
        finally:
            template = getattr(scope.get("route"), "path", "unmatched")
            REQUESTS.labels(scope["method"], template, str(status)).observe(time.perf_counter() - started)


def serve(port: int, host: str = "0.0.0.0", *, multiprocess_dir: str | None = None) -> None:  # noqa: S104 - scraped from the observability namespace
    """Serve the metrics; with `multiprocess_dir`, those every api worker process writes there."""
    if not port:
        return
    if multiprocess_dir is None:
        start_http_server(port, addr=host)
        return
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=multiprocess_dir)  # type: ignore[no-untyped-call]
    start_http_server(port, addr=host, registry=registry)
