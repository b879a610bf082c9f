"""A tenant api for each test: on PostgreSQL + Redis (production) and on SQLite with in-process
event bus and rate limits (the embedded default)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.platform.harness import Tenant, running_tenant, tenant_settings


@pytest.fixture(params=["postgresql", "sqlite"])
async def tenant(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Tenant]:
    if request.param == "postgresql":
        settings = tenant_settings(
            "alpha", request.getfixturevalue("postgres_url"), request.getfixturevalue("redis_url")
        )
    else:
        settings = tenant_settings("alpha", f"sqlite+aiosqlite:///{tmp_path / 'soa.db'}", None, environment="embedded")
    async with running_tenant(settings) as running:
        yield running
