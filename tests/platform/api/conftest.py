"""A tenant api on real PostgreSQL and Redis for each test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.platform.harness import Tenant, running_tenant, tenant_settings


@pytest.fixture
async def tenant(postgres_url: str, redis_url: str) -> AsyncIterator[Tenant]:
    async with running_tenant(tenant_settings("alpha", postgres_url, redis_url)) as running:
        yield running
