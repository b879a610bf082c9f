"""Recording security and admin events. Called inside the caller's transaction, so an action and
its audit record commit together or not at all."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from soa_platform.audit import repository
from soa_platform.audit.models import AuditEvent
from soa_platform.identity.models import User


async def record(
    session: AsyncSession,
    action: str,
    *,
    actor: User | None = None,
    actor_email: str = "",
    target_type: str = "",
    target_id: str | int = "",
    ip: str = "",
    **details: Any,
) -> None:
    await repository.add_event(
        session,
        AuditEvent(
            action=action,
            actor_id=actor.id if actor else None,
            actor_email=actor.email if actor else actor_email,
            target_type=target_type,
            target_id=str(target_id),
            ip=ip,
            details=details,
        ),
    )
