"""A notification webhook receiver for tests: applies each Idempotency-Key's effect once, like a real one should."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    key: str
    kind: str
    body: dict[str, Any]
    status: int


class WebhookReceiver:
    """Serves POST / on a free loopback port from a thread.

    `answers` is a list of statuses for the next requests (then 200); `hold_first` makes the first request
    wait until `release()` (its effect is already applied: the receiver committed, then the sender died).
    """

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.effects: Counter[str] = Counter()
        self.answers: list[int] = []
        self.hold_first = False
        self._released = threading.Event()
        self._changed = threading.Condition()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/"

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                key = self.headers.get("Idempotency-Key") or ""
                with receiver._changed:
                    status = receiver.answers.pop(0) if receiver.answers else 200
                    first = not receiver.received
                    receiver.received.append(Received(key, self.headers.get("X-SOA-Notification") or "", body, status))
                    if status < 300 and key not in receiver.effects:  # a duplicate is acknowledged, not applied
                        receiver.effects[key] += 1
                    receiver._changed.notify_all()
                if first and receiver.hold_first:
                    receiver._released.wait(30)
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the sender is gone

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def release(self) -> None:
        self._released.set()

    def requests_for(self, key: str) -> list[Received]:
        with self._changed:
            return [item for item in self.received if item.key == key]

    def wait_for_requests(self, count: int, timeout: float = 15.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.received) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"{len(self.received)}/{count} webhook requests after {timeout}s")
                self._changed.wait(remaining)
            return list(self.received)

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._released.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
