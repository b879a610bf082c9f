"""Admin rules: retention and audit exports (user administration lives in identity)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from soa_platform.admin import repository
from soa_platform.audit import repository as audit_repository
from soa_platform.audit.models import AuditExport
from soa_platform.audit.service import record
from soa_platform.context import Platform
from soa_platform.db import UnitOfWork
from soa_platform.identity.models import User

RETENTION_KEY = "retention"


async def retention_days(session: AsyncSession, tenant_default: int) -> tuple[int, str]:
    value = await repository.get_setting(session, RETENTION_KEY)
    if value is not None and isinstance(value.get("days"), int):
        return int(value["days"]), "admin"
    return tenant_default, "tenant"


async def set_retention(uow: UnitOfWork, platform: Platform, actor: User, days: int) -> None:
    old, _ = await retention_days(uow.session, platform.settings.messaging_retention_days)
    await repository.put_setting(uow.session, RETENTION_KEY, {"days": days})
    if old != days:
        await record(uow.session, "retention.changed", actor=actor, target_type="tenant", old=old, new=days)


async def request_export(uow: UnitOfWork, platform: Platform, actor: User) -> AuditExport:
    export = await audit_repository.add_export(uow.session, AuditExport(requested_by=actor.id))
    await record(uow.session, "audit.export_requested", actor=actor, target_type="audit_export", target_id=export.id)
    export_id = export.id

    async def dispatch() -> None:
        await platform.tasks.send("soa.audit.export", export_id)

    uow.after_commit(dispatch)
    return export
