"""Prometheus metrics of the api process, served on their own port (SOA_METRICS_PORT) so the public
listener has no unauthenticated endpoint besides the health checks."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from prometheus_client import Counter, Histogram, start_http_server

REQUESTS = Histogram(
    "soa_http_request_duration_seconds",
    "API request latency by route template",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5),
)
MESSAGES = Counter("soa_messages_created_total", "Messages committed")


def instrument(app: FastAPI) -> None:
    @app.middleware("http")
    async def observe(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        template = getattr(route, "path", "unmatched")
        REQUESTS.labels(request.method, template, str(response.status_code)).observe(time.perf_counter() - started)
        return response


def serve(port: int, host: str = "0.0.0.0") -> None:  # noqa: S104 - scraped from the observability namespace
    if port:
        start_http_server(port, addr=host)
