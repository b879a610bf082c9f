"""All SQL of tenant-wide settings."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from soa_platform.admin.models import Setting
from soa_platform.db import utcnow


async def get_setting(session: AsyncSession, key: str) -> dict[str, Any] | None:
    setting = await session.get(Setting, key)
    return setting.value if setting else None


async def put_setting(session: AsyncSession, key: str, value: dict[str, Any]) -> None:
    setting = await session.get(Setting, key)
    if setting is None:
        session.add(Setting(key=key, value=value, updated_at=utcnow()))
    else:
        setting.value, setting.updated_at = value, utcnow()
