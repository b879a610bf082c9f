"""WebSocket `/v1/events` on a real uvicorn server, real SQLite accounts and real tokens."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import jwt
import pytest
import uvicorn
from fastapi import FastAPI
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from soa_platform.context import Platform
from soa_platform.db import Database, utcnow
from soa_platform.events import EventStream, MemoryEventBus, RedisEventBus
from soa_platform.events.endpoints import router
from soa_platform.identity import repository
from soa_platform.identity.models import User
from soa_platform.identity.tokens import TokenService
from soa_platform.migrate import upgrade
from soa_platform.ratelimit import RateLimiter
from soa_platform.settings import PlatformSettings

SIGNING_KEY = "x" * 40


def settings_of(tenant: str, database_url: str) -> PlatformSettings:
    return PlatformSettings(
        tenant=tenant,
        signing_key=SIGNING_KEY,
        session_key="y" * 40,
        environment="test",
        local_accounts=True,
        database_url=database_url,
    )


@dataclass(frozen=True)
class Accounts:
    database_url: str
    alice: int
    bob: int


@pytest.fixture(scope="module")
def accounts(tmp_path_factory: pytest.TempPathFactory) -> Accounts:
    """A migrated SQLite database of tenant t1 with two users (shared by this module's tests)."""
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('events')}/t.db"
    upgrade(url)

    async def add_users() -> tuple[int, int]:
        db = Database(url)
        try:
            async with db.unit_of_work() as uow:
                alice = await repository.add(uow.session, User(email="alice@t1.test", display_name="Alice"))
                bob = await repository.add(uow.session, User(email="bob@t1.test", display_name="Bob"))
            return alice.id, bob.id
        finally:
            await db.dispose()

    return Accounts(url, *asyncio.run(add_users()))


class _NoTasks:
    async def send(self, task_name: str, *args: Any) -> None:
        raise AssertionError("the events endpoint enqueues no tasks")


@dataclass
class EventsServer:
    port: int
    bus: EventStream
    tokens: TokenService
    accounts: Accounts

    def url(self, **query: object) -> str:
        params = "&".join(f"{key}={value}" for key, value in query.items())
        return f"ws://127.0.0.1:{self.port}/v1/events" + (f"?{params}" if params else "")

    def token(self, user_id: int) -> str:
        return self.tokens.issue(user_id)[0]

    @asynccontextmanager
    async def socket(self, user_id: int, **query: object) -> AsyncIterator[ClientConnection]:
        async with connect(self.url(access_token=self.token(user_id), **query)) as websocket:
            yield websocket


@pytest.fixture
def bus_kind(request: pytest.FixtureRequest) -> str:
    """Endpoint tests run on the memory bus unless they parametrize `bus_kind` (indirect)."""
    return str(getattr(request, "param", "memory"))


@pytest.fixture
def queue_size() -> int:
    return 256


@pytest.fixture
async def server(
    request: pytest.FixtureRequest, accounts: Accounts, bus_kind: str, queue_size: int
) -> AsyncIterator[EventsServer]:
    settings = settings_of("t1", accounts.database_url)
    bus: EventStream
    if bus_kind == "redis":
        bus = RedisEventBus(request.getfixturevalue("redis_url"), 10, "t1", queue_size=queue_size)
    else:
        bus = MemoryEventBus(10, queue_size=queue_size)
    platform = Platform(
        settings=settings,
        db=Database(accounts.database_url),
        tokens=TokenService(settings),
        events=bus,
        limiter=RateLimiter(settings.rate_limit, None),
        tasks=_NoTasks(),
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await bus.start()
        yield
        await bus.stop()
        await platform.db.dispose()

    app = FastAPI(lifespan=lifespan)
    app.state.platform = platform
    app.include_router(router)
    uvicorn_server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    serving = asyncio.create_task(uvicorn_server.serve())
    async with asyncio.timeout(10):
        while not uvicorn_server.started:  # noqa: ASYNC110 - uvicorn offers only this flag
            await asyncio.sleep(0.01)
    port = uvicorn_server.servers[0].sockets[0].getsockname()[1]
    yield EventsServer(port, bus, platform.tokens, accounts)
    uvicorn_server.should_exit = True
    await serving


async def frame(websocket: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(5):
        received: dict[str, Any] = json.loads(await websocket.recv())
    return received


async def close_of(websocket: ClientConnection) -> tuple[int, str]:
    """Read until the server closes; its close code and reason."""
    with pytest.raises(ConnectionClosed):
        await _read_for_ever(websocket)
    assert websocket.close_code is not None
    return websocket.close_code, websocket.close_reason or ""


async def _read_for_ever(websocket: ClientConnection) -> None:
    async with asyncio.timeout(5):
        while True:
            await websocket.recv()


def event(n: int) -> dict[str, Any]:
    return {"type": "test.event", "n": n}


@pytest.fixture
def other_tenant_tokens(accounts: Accounts) -> TokenService:
    return TokenService(settings_of("t2", accounts.database_url))


@pytest.mark.parametrize(
    "query",
    [{}, {"access_token": "not-a-token"}, {"access_token": jwt.encode({"sub": "1"}, "z" * 40, algorithm="HS256")}],
    ids=["no token", "garbage", "foreign signature"],
)
async def test_a_socket_without_a_valid_token_is_closed_with_4401(server: EventsServer, query: dict[str, str]) -> None:
    async with connect(server.url(**query)) as websocket:
        assert (await close_of(websocket))[0] == 4401


async def test_a_token_of_another_tenant_is_closed_with_4401(
    server: EventsServer, other_tenant_tokens: TokenService
) -> None:
    foreign = other_tenant_tokens.issue(server.accounts.alice)[0]
    async with connect(server.url(access_token=foreign)) as websocket:
        assert await close_of(websocket) == (4401, "token was not issued for this tenant")


async def test_an_invalid_last_seq_is_refused_before_accept(server: EventsServer) -> None:
    with pytest.raises(InvalidStatus):
        async with connect(server.url(access_token=server.token(server.accounts.alice), last_seq=-1)):
            pass


async def test_a_bearer_header_authenticates(server: EventsServer) -> None:
    headers = {"Authorization": f"Bearer {server.token(server.accounts.alice)}"}
    async with connect(server.url(), additional_headers=headers) as websocket:
        assert await frame(websocket) == {"type": "hello", "latest_seq": 0}


async def test_hello_comes_first_then_only_the_users_own_events(server: EventsServer) -> None:
    alice, bob = server.accounts.alice, server.accounts.bob
    await server.bus.publish([alice], event(0))
    async with server.socket(alice) as websocket:
        assert await frame(websocket) == {"type": "hello", "latest_seq": 1}
        await server.bus.publish([bob], event(1))
        await server.bus.publish([alice, bob], event(2))
        assert await frame(websocket) == {"seq": 2, **event(2)}


async def test_a_ping_gets_a_pong(server: EventsServer) -> None:
    async with server.socket(server.accounts.alice) as websocket:
        await frame(websocket)
        await websocket.send(json.dumps({"type": "ping"}))
        assert await frame(websocket) == {"type": "pong"}


@pytest.mark.parametrize("bus_kind", ["memory", "redis"], indirect=True)
async def test_resuming_over_a_dropped_socket_has_no_gap_or_duplicate(server: EventsServer) -> None:
    alice = server.accounts.alice
    async with server.socket(alice) as websocket:
        assert await frame(websocket) == {"type": "hello", "latest_seq": 0}
        for n in (1, 2, 3):
            await server.bus.publish([alice], event(n))
        assert [(await frame(websocket))["seq"] for _ in range(3)] == [1, 2, 3]
    for n in (4, 5, 6):
        await server.bus.publish([alice], event(n))
    async with server.socket(alice, last_seq=3) as websocket:
        assert await frame(websocket) == {"type": "hello", "latest_seq": 6}
        assert [await frame(websocket) for _ in range(3)] == [{"seq": n, **event(n)} for n in (4, 5, 6)]
        await server.bus.publish([alice], event(7))
        assert await frame(websocket) == {"seq": 7, **event(7)}


async def test_a_last_seq_older_than_the_stream_gets_resync_required(server: EventsServer) -> None:
    alice = server.accounts.alice
    for n in range(1, 21):  # the test streams keep 10
        await server.bus.publish([alice], event(n))
    async with server.socket(alice, last_seq=2) as websocket:
        assert await frame(websocket) == {"type": "hello", "latest_seq": 20}
        assert await frame(websocket) == {"type": "resync_required", "latest_seq": 20}
        await server.bus.publish([alice], event(21))
        assert await frame(websocket) == {"seq": 21, **event(21)}


@pytest.mark.parametrize("queue_size", [2])
async def test_a_client_that_falls_behind_is_closed_with_4408(server: EventsServer) -> None:
    alice = server.accounts.alice
    async with server.socket(alice) as websocket:
        await frame(websocket)
        for n in range(1, 21):  # the memory bus publishes without yielding: the socket cannot keep up
            await server.bus.publish([alice], event(n))
        assert (await close_of(websocket))[0] == 4408


async def test_the_socket_closes_with_4401_when_the_token_expires(server: EventsServer) -> None:
    settings = settings_of("t1", server.accounts.database_url)
    now = utcnow()
    # expired, but still accepted within the verification leeway for another second or two
    expires = now - timedelta(seconds=settings.oidc_leeway_seconds - 2)
    claims = {"iss": settings.token_issuer, "aud": settings.token_audience, "sub": str(server.accounts.alice),
              "iat": now - timedelta(minutes=5), "exp": expires, "soa_tenant": "t1"}  # fmt: skip
    async with connect(server.url(access_token=jwt.encode(claims, SIGNING_KEY, algorithm="HS256"))) as websocket:
        assert (await frame(websocket))["type"] == "hello"
        assert await close_of(websocket) == (4401, "token expired")
