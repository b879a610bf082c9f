"""pytest fixtures for real backing services: PostgreSQL, Redis and an OTLP trace receiver.

Registered in tests/conftest.py (``pytest_plugins``). The servers are started once per session, lazily
(only when a test asks for them), and stopped at session end whatever the outcome; per-test fixtures
give each test a fresh database and an empty Redis.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import pytest

from tests.support.otlp import OtlpReceiver
from tests.support.servers import PostgresServer, RedisServer


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL 15 cluster on a free loopback port; `.url` is the `soa` database (SQLAlchemy async)."""
    server = PostgresServer.launch()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A redis-server with AOF (appendfsync always) on a free loopback port."""
    server = RedisServer.launch()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def otlp_receiver() -> Iterator[OtlpReceiver]:
    """An OTLP/HTTP trace receiver; spans accumulate over the session, so filter or clear() in tests."""
    with OtlpReceiver() as receiver:
        yield receiver


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """SQLAlchemy async URL of a fresh database owned by `soa`, dropped after the test."""
    postgres_server.start()  # no-op unless an earlier test left it stopped or killed
    name = f"test_{uuid.uuid4().hex[:12]}"
    yield postgres_server.create_database(name)
    if postgres_server.running:
        with contextlib.suppress(RuntimeError):
            postgres_server.drop_database(name)


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """URL of db 0 on the session Redis, emptied (FLUSHALL) before the test."""
    redis_server.start()  # no-op unless an earlier test left it stopped or killed
    redis_server.flushall()
    return redis_server.url
