"""Simulated users of the messaging load benchmark: each a WebSocket plus an HTTP client, in one asyncio process.

A user connects (WebSocket /v1/events until its hello frame, then its conversation list, as a client does
on start-up) and then, forever, waits (Mattermost's pacing: on average `think_mean` seconds, at least
`think_min`) and does one action picked by Mattermost's relative weights:

* switch channel (6.5): the latest page of another of its conversations, then marks it read;
* scroll (2): the page before the oldest message shown;
* post (1): a message in the current conversation (sometimes mentioning a member);
* unread check (1): its conversation list with unread and mention counts;
* reconnect (0.14): closes its WebSocket and opens it again with the last sequence number it saw.

Every request's latency (until the whole body is read) and outcome go to the Recorder; so does each
send-to-deliver latency: a post's send time is kept by the marker that starts its body, and each other
member's WebSocket that receives its message.created frame records now - send time (one process, one clock).
The users share one HTTP connection pool (keep-alive, unlimited size) instead of one pool each: the same
requests, far fewer idle sockets in the generator.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import random
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from messaging_seed import Account, sentence

ACTIONS = ("switch", "scroll", "post", "unread", "reconnect")
WEIGHTS = (6.5, 2.0, 1.0, 1.0, 0.14)  # Mattermost load-test-ng's relative frequencies
PAGE = 60
REQUEST_TIMEOUT = 10.0
HELLO_TIMEOUT = 10.0
PENDING_SECONDS = 30.0  # a post not delivered to a connected member within this counts as a missed delivery
KEEPALIVE_SECONDS = 4.0  # under uvicorn's 5 s keep-alive, so the client never reuses a closed connection

LABELS = (
    "GET messages (latest)",
    "POST read",
    "GET messages (before)",
    "POST message",
    "GET conversations",
    "WS connect",
)


@dataclass
class Window:
    """What happened between two rotations of the Recorder."""

    seconds: float
    latencies: dict[str, list[float]] = field(default_factory=lambda: collections.defaultdict(list))
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    deliveries: list[float] = field(default_factory=list)
    healthz: list[float] = field(default_factory=list)
    lag: list[float] = field(default_factory=list)
    actions: collections.Counter[str] = field(default_factory=collections.Counter)
    posts: int = 0
    missed: int = 0

    no_response: int = 0  # failed requests without a latency (timeouts, connection errors)

    @property
    def requests(self) -> int:
        return sum(len(v) for v in self.latencies.values()) + self.no_response

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


class Recorder:
    def __init__(self) -> None:
        self._started = time.monotonic()
        self.window = Window(0.0)
        self.total = 0  # requests since start_counting(), across windows

    def start_counting(self) -> None:
        self.total = 0

    def request(self, label: str, seconds: float, error: str | None = None) -> None:
        self.total += 1
        self.window.latencies[label].append(seconds)
        if error:
            self.window.errors[f"{label}: {error}"] += 1

    def failure(self, label: str, reason: str) -> None:
        """A request that got no response (timeout, connection error): an error without a latency."""
        self.total += 1
        self.window.no_response += 1
        self.window.errors[f"{label}: {reason}"] += 1

    def rotate(self) -> Window:
        now = time.monotonic()
        window, self.window = self.window, Window(0.0)
        window.seconds = now - self._started
        self._started = now
        return window


@dataclass
class Pending:
    sent: float
    conversation_id: int
    expected: int
    delivered: int = 0


class SimUser:
    def __init__(self, account: Account, population: Population) -> None:
        self.account = account
        self.id = account.user_id
        self.pop = population
        self.auth = {"Authorization": f"Bearer {account.token}"}
        self.json_headers = {**self.auth, "Content-Type": "application/json"}
        self.current: int | None = None
        self.oldest: int | None = None  # oldest message shown in the current conversation (scroll from here)
        self.latest_oldest: int | None = None
        self.last_seq: int | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.reader: asyncio.Task[None] | None = None
        self.task: asyncio.Task[None] | None = None
        self.stopping = False

    # ---- lifecycle -------------------------------------------------------------------------------------

    async def run(self, delay: float) -> None:
        await asyncio.sleep(delay)
        await self.connect()
        await self.unread()
        rng = self.pop.rng
        while not self.stopping:
            await asyncio.sleep(self.pop.think())
            if self.ws is None:  # the connect failed or the server dropped the socket: a client reconnects
                await self.connect()
            action = rng.choices(ACTIONS, WEIGHTS)[0]
            self.pop.recorder.window.actions[action] += 1
            await getattr(self, action)()

    async def stop(self) -> None:
        self.stopping = True
        task = self.task
        # cancel until it is done: on Python 3.11 asyncio.wait_for (inside aiohttp) can swallow a cancellation,
        # and one `await task` after one cancel() then hung the whole run on a step down
        while task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=1)
        await self.disconnect()

    async def connect(self) -> None:
        """Open the WebSocket; the request ends with the hello frame."""
        url = f"{self.pop.ws_url}?access_token={self.account.token}"
        if self.last_seq is not None:
            url += f"&last_seq={self.last_seq}"
        label, started = "WS connect", time.perf_counter()
        try:
            ws = await self.pop.ws_session.ws_connect(url, autoping=True, max_msg_size=1 << 20)
        except aiohttp.WSServerHandshakeError as error:
            self.pop.recorder.request(label, time.perf_counter() - started, f"HTTP {error.status}")
            return
        except (TimeoutError, aiohttp.ClientError, OSError) as error:
            self.pop.recorder.failure(label, type(error).__name__)
            return
        try:
            first = await ws.receive(timeout=HELLO_TIMEOUT)
            hello = orjson.loads(first.data) if first.type is aiohttp.WSMsgType.TEXT else {}
        except (TimeoutError, orjson.JSONDecodeError, aiohttp.ClientError) as error:
            self.pop.recorder.failure(label, f"no hello ({type(error).__name__})")
            await ws.close()
            return
        elapsed = time.perf_counter() - started
        if hello.get("type") != "hello":
            self.pop.recorder.request(label, elapsed, f"first frame {str(hello)[:60]}")
            await ws.close()
            return
        self.pop.recorder.request(label, elapsed)
        if self.last_seq is None:
            self.last_seq = int(hello.get("latest_seq") or 0)
        self.ws = ws
        self.pop.online.add(self.id)
        self.reader = asyncio.create_task(self.read(ws))

    async def disconnect(self) -> None:
        ws, reader = self.ws, self.reader
        self.ws = self.reader = None
        self.pop.online.discard(self.id)
        if ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 5)
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader

    async def read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            if msg.type is aiohttp.WSMsgType.TEXT:
                self.pop.on_frame(self, msg.data)
        if self.ws is ws and not self.stopping:  # not closed by us: the server dropped it (run() reconnects)
            self.pop.recorder.failure("WS connect", f"dropped by the server ({ws.close_code})")
            self.ws = self.reader = None
            self.pop.online.discard(self.id)

    # ---- HTTP ------------------------------------------------------------------------------------------

    async def call(self, label: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """One request; the parsed JSON answer, or None on any error (recorded)."""
        recorder = self.pop.recorder
        started = time.perf_counter()
        try:
            async with self.pop.http.request(
                method,
                self.pop.base_url + path,
                headers=self.json_headers if body is not None else self.auth,
                data=orjson.dumps(body) if body is not None else None,
            ) as response:
                payload = await response.read()
                elapsed = time.perf_counter() - started
                if response.status >= 400:
                    recorder.request(label, elapsed, f"HTTP {response.status}")
                    return None
        except (TimeoutError, aiohttp.ClientError, OSError) as error:
            recorder.failure(label, type(error).__name__)
            return None
        recorder.request(label, elapsed)
        return orjson.loads(payload) if payload else {}

    # ---- actions ---------------------------------------------------------------------------------------

    async def switch(self) -> None:
        choices = self.account.conversations
        target = self.pop.rng.choice(choices)
        if target == self.current and len(choices) > 1:
            target = self.pop.rng.choice([c for c in choices if c != self.current])
        page = await self.call("GET messages (latest)", "GET", f"/v1/conversations/{target}/messages?limit={PAGE}")
        if page is None:
            return
        self.current = target
        items = page.get("items") or []
        self.oldest = self.latest_oldest = items[0]["id"] if items else None
        if items:
            await self.call("POST read", "POST", f"/v1/conversations/{target}/read", {"message_id": items[-1]["id"]})

    async def scroll(self) -> None:
        if self.current is None or self.oldest is None:
            await self.switch()
            return
        path = f"/v1/conversations/{self.current}/messages?limit={PAGE}&before={self.oldest}"
        page = await self.call("GET messages (before)", "GET", path)
        if page is None:
            return
        items = page.get("items") or []
        self.oldest = items[0]["id"] if items and page.get("has_more") else self.latest_oldest

    async def post(self) -> None:
        pop = self.pop
        cid = self.current if self.current is not None else pop.rng.choice(self.account.conversations)
        n = next(pop.counter)
        marker = f"lt{n}"
        text = sentence(pop.rng, pop.rng.randint(4, 24))
        if pop.rng.random() < pop.mention_share:
            others = [m for m in pop.members[cid] if m != self.id]
            if others:
                text += f" <@{pop.rng.choice(others)}>"
        expected = sum(1 for m in pop.members[cid] if m != self.id and m in pop.online)
        pop.pending[marker] = Pending(time.perf_counter(), cid, expected)
        pop.recorder.window.posts += 1
        body = {"body": f"{marker} {text}", "idempotency_key": f"lt-{self.id}-{n}"}
        await self.call("POST message", "POST", f"/v1/conversations/{cid}/messages", body)

    async def unread(self) -> None:
        await self.call("GET conversations", "GET", "/v1/conversations")

    async def reconnect(self) -> None:
        await self.disconnect()
        await self.connect()


class Population:
    """The simulated users, their shared HTTP pool, the pending posts, and two probes (/healthz, loop lag)."""

    def __init__(
        self,
        accounts: list[Account],
        members: dict[int, list[int]],
        base_url: str,
        rng: random.Random,
        *,
        think_mean: float,
        think_min: float,
        mention_share: float,
    ) -> None:
        self.accounts = accounts
        self.members = members
        self.base_url = base_url
        self.ws_url = base_url.replace("http://", "ws://") + "/v1/events"
        self.rng = rng
        self.think_mean = think_mean
        self.think_min = think_min
        self.mention_share = mention_share
        self.recorder = Recorder()
        self.users: list[SimUser] = []
        self.online: set[int] = set()
        self.pending: dict[str, Pending] = {}
        self.counter = itertools.count(1)
        self._probes: list[asyncio.Task[None]] = []
        self.http: aiohttp.ClientSession
        self.ws_session: aiohttp.ClientSession

    async def open(self) -> None:
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
        self.http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=KEEPALIVE_SECONDS), timeout=timeout
        )
        self.ws_session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=timeout)
        self._probes = [asyncio.create_task(self._healthz_probe()), asyncio.create_task(self._lag_probe())]

    async def close(self) -> None:
        for task in self._probes:
            task.cancel()
        await self.resize(0, 0.0)
        await self.http.close()
        await self.ws_session.close()

    @property
    def active(self) -> int:
        return len(self.users)

    def think(self) -> float:
        """Mattermost's pacing: on average think_mean seconds between a user's actions, never under think_min."""
        return self.think_min + self.rng.expovariate(1.0 / max(0.001, self.think_mean - self.think_min))

    async def resize(self, target: int, ramp_seconds: float) -> None:
        """Add users (their connects spread over ramp_seconds) or remove the newest ones."""
        target = max(0, min(target, len(self.accounts)))
        while len(self.users) < target:
            user = SimUser(self.accounts[len(self.users)], self)
            user.task = asyncio.create_task(user.run(self.rng.uniform(0, ramp_seconds)))
            self.users.append(user)
        if len(self.users) > target:
            leaving, self.users = self.users[target:], self.users[:target]
            await asyncio.gather(*(user.stop() for user in leaving))

    def on_frame(self, user: SimUser, data: str) -> None:
        frame = orjson.loads(data)
        seq = frame.get("seq")
        if isinstance(seq, int) and (user.last_seq is None or seq > user.last_seq):
            user.last_seq = seq
        if frame.get("type") != "message.created":
            return
        message = frame.get("message") or {}
        if message.get("author_id") == user.id:
            return
        marker = (message.get("body") or "").partition(" ")[0]
        pending = self.pending.get(marker)
        if pending is not None:
            pending.delivered += 1
            self.recorder.window.deliveries.append(time.perf_counter() - pending.sent)

    def expire_pending(self) -> None:
        """Posts older than PENDING_SECONDS: connected members that never got them are missed deliveries."""
        cutoff = time.perf_counter() - PENDING_SECONDS
        for marker, pending in list(self.pending.items()):
            if pending.sent < cutoff:
                self.recorder.window.missed += max(0, pending.expected - pending.delivered)
                del self.pending[marker]

    async def _healthz_probe(self, interval: float = 0.5) -> None:
        """The bare request: GET /healthz twice a second, on its own connection."""
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as session:
            while True:
                started = time.perf_counter()
                with contextlib.suppress(aiohttp.ClientError, OSError, asyncio.TimeoutError):
                    async with session.get(self.base_url + "/healthz", timeout=aiohttp.ClientTimeout(5)) as r:
                        await r.read()
                        self.recorder.window.healthz.append(time.perf_counter() - started)
                await asyncio.sleep(interval)

    async def _lag_probe(self, interval: float = 0.05) -> None:
        """How late this process's event loop wakes up: when it is busy, every latency above includes this."""
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(interval)
            self.recorder.window.lag.append(max(0.0, loop.time() - started - interval))
