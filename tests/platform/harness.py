"""An in-process api of one tenant on real PostgreSQL and Redis, with helpers to make users."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI

from soa_platform.bootstrap import build_api
from soa_platform.context import Platform
from soa_platform.identity import service as identity
from soa_platform.identity.models import Role
from soa_platform.migrate import upgrade
from soa_platform.settings import PlatformSettings

PASSWORD = "correct horse battery staple"
SIGNING_KEY = "k" * 48


def tenant_settings(tenant: str, database_url: str, redis_url: str | None, **overrides: Any) -> PlatformSettings:
    values: dict[str, Any] = {
        "environment": "test",
        "tenant": tenant,
        "public_url": f"https://{tenant}.soa.test",
        "database_url": database_url,
        "redis_url": redis_url,
        "broker_url": redis_url,
        "signing_key": SIGNING_KEY,
        "session_key": "s" * 48,
        "local_accounts": True,
        "allowed_email_domains": [f"{tenant}.gov.pk"],
        "rate_limit": "1000/second",
        **overrides,
    }
    return PlatformSettings(**values)


@dataclass
class Tenant:
    """A running api of one tenant and a client for it."""

    app: FastAPI
    client: httpx.AsyncClient
    settings: PlatformSettings
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def platform(self) -> Platform:
        platform: Platform = self.app.state.platform
        return platform

    async def user(self, name: str | None = None, role: Role = Role.member) -> User:
        name = name or f"user{next(self._ids)}"
        email = f"{name}@{self.settings.tenant}.gov.pk"
        async with self.platform.db.unit_of_work() as uow:
            created = await identity.create_user(
                uow.session, self.settings, None, email=email, display_name=name, role=role, password=PASSWORD
            )
        token, _ = self.platform.tokens.issue(created.id)
        return User(created.id, email, {"Authorization": f"Bearer {token}"}, token)


@dataclass(frozen=True)
class User:
    id: int
    email: str
    headers: dict[str, str]
    token: str


@asynccontextmanager
async def running_tenant(settings: PlatformSettings) -> AsyncIterator[Tenant]:
    await asyncio.to_thread(upgrade, settings.sqlalchemy_url)  # alembic runs its own event loop
    app = build_api(settings, tracing=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=settings.public_url) as client:
            yield Tenant(app, client, settings)
