"""Event buses for the tests: in memory, or on the session's real Redis (one tenant each)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from soa_platform.events import EventStream, MemoryEventBus, RedisEventBus

BusFactory = Callable[..., Awaitable[EventStream]]


@pytest.fixture(params=["memory", "redis"])
def bus_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def make_bus(request: pytest.FixtureRequest, bus_kind: str) -> AsyncIterator[BusFactory]:
    """Starts buses of `bus_kind` (`stream_length`, `queue_size`, `tenant` as keywords); stops them after."""
    redis_url = request.getfixturevalue("redis_url") if bus_kind == "redis" else ""
    started: list[EventStream] = []

    async def make(stream_length: int = 1000, queue_size: int = 256, tenant: str = "t1") -> EventStream:
        bus: EventStream
        if bus_kind == "redis":
            bus = RedisEventBus(redis_url, stream_length, tenant, queue_size=queue_size)
        else:
            bus = MemoryEventBus(stream_length, queue_size=queue_size)
        await bus.start()
        started.append(bus)
        return bus

    yield make
    for bus in started:
        await bus.stop()


@pytest.fixture
async def bus(make_bus: BusFactory) -> EventStream:
    return await make_bus()
