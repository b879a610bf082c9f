"""The real-server fixtures (tests/support/servers.py) work: writes land, survive kill -9, spans arrive."""

from __future__ import annotations

import sys
from pathlib import Path

import asyncpg
import pytest
import redis
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from tests.support.servers import ManagedProcess, OtlpReceiver, PostgresServer, RedisServer, free_port


def _dsn(sqlalchemy_url: str) -> str:
    return sqlalchemy_url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def test_postgres_accepts_a_write_as_soa(postgres_url: str) -> None:
    conn = await asyncpg.connect(_dsn(postgres_url))
    try:
        await conn.execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
        await conn.execute("INSERT INTO t VALUES (1, 'one')")
        assert await conn.fetchval("SELECT v FROM t WHERE id = 1") == "one"
        assert await conn.fetchval("SELECT current_user") == "soa"
    finally:
        await conn.close()


async def test_postgres_checks_passwords(postgres_server: PostgresServer, postgres_url: str) -> None:
    wrong = _dsn(postgres_url).replace(postgres_server.password, "wrong")
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(wrong)


async def test_postgres_committed_row_survives_kill(postgres_server: PostgresServer, postgres_url: str) -> None:
    conn = await asyncpg.connect(_dsn(postgres_url))
    await conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
    await conn.execute("INSERT INTO t VALUES (42)")
    port = postgres_server.port
    postgres_server.kill()
    assert not postgres_server.running
    with pytest.raises((OSError, asyncpg.PostgresError, asyncpg.InterfaceError)):
        await conn.fetchval("SELECT 1")
    conn.terminate()
    postgres_server.start()
    assert postgres_server.port == port
    conn = await asyncpg.connect(_dsn(postgres_url))
    try:
        assert await conn.fetchval("SELECT id FROM t") == 42
    finally:
        await conn.close()
    assert "database system was interrupted" in postgres_server.log_path.read_text()


def test_redis_write_survives_kill(redis_server: RedisServer, redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.set("acknowledged", "yes")
        redis_server.kill()
        redis_server.start()
        assert client.get("acknowledged") == b"yes"  # the client reconnects on its own
    finally:
        client.close()


def test_redis_url_starts_empty(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.dbsize() == 0
    finally:
        client.close()


def test_otlp_receiver_gets_sdk_spans(otlp_receiver: OtlpReceiver) -> None:
    resource = Resource.create({"service.name": "soa-test", "deployment.environment": "test"})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=otlp_receiver.traces_endpoint)))
    tracer = provider.get_tracer("soa.tests")
    with tracer.start_as_current_span("parent") as parent, tracer.start_as_current_span("child") as child:
        child.set_attribute("soa.tenant", "moitt")
        child.set_attribute("soa.count", 3)
    provider.shutdown()
    trace_id = format(parent.get_span_context().trace_id, "032x")
    spans = otlp_receiver.wait_for(lambda s: s.trace_id == trace_id, timeout=10, count=2)
    by_name = {s.name: s for s in spans}
    assert by_name["parent"].parent_span_id is None
    assert by_name["child"].parent_span_id == by_name["parent"].span_id
    assert by_name["child"].attributes == {"soa.tenant": "moitt", "soa.count": 3}
    assert by_name["child"].service_name == "soa-test"
    assert by_name["child"].resource["deployment.environment"] == "test"
    assert by_name["child"].scope == "soa.tests"


def test_managed_process_waits_and_kills_its_tree(tmp_path: Path) -> None:
    port = free_port()
    cmd = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    with ManagedProcess(cmd, tmp_path / "http.log", env={"PYTHONUNBUFFERED": "1"}, cwd=tmp_path) as proc:
        proc.wait_for_http(f"http://127.0.0.1:{port}/", timeout=10)
        assert proc.running
        proc.kill()
        assert not proc.running
        assert proc.returncode == -9
    assert "GET / HTTP" in proc.log_text()


def test_managed_process_reports_early_exit(tmp_path: Path) -> None:
    proc = ManagedProcess([sys.executable, "-c", "print('boom'); raise SystemExit(3)"], tmp_path / "x.log").start()
    with pytest.raises(RuntimeError, match="boom"):
        proc.wait_for_port("127.0.0.1", free_port(), timeout=10)
    assert proc.returncode == 3
