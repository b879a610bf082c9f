"""Meetings tests run against the session's real Janus and coturn (tests/support/fixtures_meetings.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from soa_platform.meetings.janus import JanusController
from soa_platform.settings import PlatformSettings
from tests.platform.harness import Tenant, running_tenant, tenant_settings
from tests.support.janus_server import CoturnServer, JanusServer


@pytest.fixture
async def controller(janus: JanusServer) -> AsyncIterator[JanusController]:
    """A controller holding the API and admin secrets of the test Janus."""
    controller = JanusController(janus.url, janus.admin_url, janus.api_secret, janus.admin_secret)
    try:
        yield controller
    finally:
        await controller.close()


def meetings_settings(
    tenant: str, database_url: str, redis_url: str | None, janus: JanusServer, coturn: CoturnServer, **overrides: Any
) -> PlatformSettings:
    """A tenant whose meetings use the test Janus and coturn."""
    return tenant_settings(
        tenant, database_url, redis_url,
        janus_url=janus.url, janus_admin_url=janus.admin_url, janus_public_url=janus.ws_url,
        janus_api_secret=janus.api_secret, janus_admin_secret=janus.admin_secret,
        turn_uris=[coturn.uri], turn_shared_secret=coturn.shared_secret, **overrides,
    )  # fmt: skip


CAPS: dict[str, Any] = {"meetings_max_participants": 4, "meetings_max_concurrent_meetings": 3}


@pytest.fixture
async def tenant(postgres_url: str, redis_url: str, janus: JanusServer, coturn: CoturnServer) -> AsyncIterator[Tenant]:
    """A tenant api on PostgreSQL and Redis with meetings on the session's Janus and coturn (small caps)."""
    settings = meetings_settings("alpha", postgres_url, redis_url, janus, coturn, **CAPS)
    async with running_tenant(settings) as running:
        yield running


@pytest.fixture(params=["postgresql", "sqlite"])
async def any_tenant(
    request: pytest.FixtureRequest, tmp_path: Path, janus: JanusServer, coturn: CoturnServer
) -> AsyncIterator[Tenant]:
    """The same on PostgreSQL + Redis (production) and on SQLite with the in-process event bus (`soa up`)."""
    if request.param == "postgresql":
        database, redis = request.getfixturevalue("postgres_url"), request.getfixturevalue("redis_url")
        settings = meetings_settings("alpha", database, redis, janus, coturn, **CAPS)
    else:
        database = f"sqlite+aiosqlite:///{tmp_path / 'soa.db'}"
        settings = meetings_settings("alpha", database, None, janus, coturn, environment="embedded", **CAPS)
    async with running_tenant(settings) as running:
        yield running
