"""FastAPI dependencies as `Annotated` aliases: the unit of work and the authenticated user."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request, WebSocket
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from soa_platform.context import Platform
from soa_platform.db import UnitOfWork
from soa_platform.errors import Forbidden, NotAuthenticated
from soa_platform.identity import service as identity_service
from soa_platform.identity.models import Role, User

_bearer = HTTPBearer(auto_error=False, description="An access token of this tenant (local login or its OIDC issuer)")


async def get_platform(request: Request) -> Platform:
    # async: a plain def would be run in the thread pool on every request
    platform: Platform = request.app.state.platform
    return platform


PlatformDep = Annotated[Platform, Depends(get_platform)]


async def get_uow(platform: PlatformDep) -> AsyncIterator[UnitOfWork]:
    # commits before the response is sent, so an acknowledged write is durable
    async with platform.db.unit_of_work() as uow:
        yield uow


UowDep = Annotated[UnitOfWork, Depends(get_uow, scope="function")]


async def authenticate(platform: Platform, uow: UnitOfWork, token: str | None) -> User:
    if not token:
        raise NotAuthenticated()
    verified = await platform.tokens.verify(token)
    key = f"{verified.source}:{verified.subject}"
    user = platform.user_cache.get(key)
    if user is None:
        user = await identity_service.resolve_user(uow.session, platform.settings, verified)
        platform.user_cache.put(key, user)
    return user


async def get_current_user(
    platform: PlatformDep, uow: UowDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> User:
    return await authenticate(platform, uow, credentials.credentials if credentials else None)


CurrentUser = Annotated[User, Depends(get_current_user)]


async def get_admin(user: CurrentUser) -> User:
    if user.role is not Role.admin:
        raise Forbidden("this needs the admin role")
    return user


AdminUser = Annotated[User, Depends(get_admin)]


def websocket_platform(websocket: WebSocket) -> Platform:
    platform: Platform = websocket.app.state.platform
    return platform


def client_ip(request: Request) -> str:
    return request.client.host if request.client else ""
