"""Admin endpoints: users and roles, retention, the audit log and its export."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import PlainTextResponse

from soa_platform.admin import service
from soa_platform.admin.schemas import AuditEventOut, AuditExportOut, AuditPage, Retention, RetentionOut
from soa_platform.audit import repository as audit_repository
from soa_platform.dependencies import AdminUser, CurrentUser, PlatformDep, UowDep
from soa_platform.errors import Conflict, Forbidden, InvalidRequest, NotFound
from soa_platform.identity import repository as users
from soa_platform.identity import service as identity
from soa_platform.identity.schemas import UserCreate, UserOut, UserUpdate

router = APIRouter(tags=["admin"], responses={401: {}, 403: {}})

UserIdPath = Annotated[int, Path(ge=1, le=2**62)]


@router.get("/v1/users", response_model=list[UserOut])
async def list_users(
    user: CurrentUser,
    uow: UowDep,
    q: Annotated[str | None, Query(max_length=100)] = None,
    after: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[UserOut]:
    """The tenant's directory (not for guests)."""
    if user.role.value == "guest":
        raise Forbidden("guests cannot browse the directory")
    return [UserOut.model_validate(u) for u in await users.search(uow.session, q, after_id=after, limit=limit)]


@router.post("/v1/admin/users", response_model=UserOut, status_code=201, responses={400: {}, 409: {}})
async def create_user(body: UserCreate, admin: AdminUser, platform: PlatformDep, uow: UowDep) -> UserOut:
    """Create an account (a local password is optional: OIDC users link on first login by e-mail)."""
    user = await identity.create_user(
        uow.session, platform.settings, admin, email=str(body.email), display_name=body.display_name,
        role=body.role, password=body.password,
    )  # fmt: skip
    return UserOut.model_validate(user)


@router.patch("/v1/admin/users/{user_id}", response_model=UserOut, responses={400: {}, 404: {}})
async def update_user(
    user_id: UserIdPath, body: UserUpdate, admin: AdminUser, platform: PlatformDep, uow: UowDep
) -> UserOut:
    """Change a user's role or disable/enable the account (audited)."""
    user = await identity.update_user(uow.session, admin, user_id, role=body.role, active=body.active)
    platform.user_cache.forget(user_id)  # this process at once; the others within SOA_USER_CACHE_SECONDS
    return UserOut.model_validate(user)


@router.get("/v1/admin/retention", response_model=RetentionOut)
async def get_retention(_admin: AdminUser, platform: PlatformDep, uow: UowDep) -> RetentionOut:
    days, source = await service.retention_days(uow.session, platform.settings.messaging_retention_days)
    return RetentionOut(days=days, source=source)


@router.put("/v1/admin/retention", response_model=RetentionOut, responses={400: {}})
async def put_retention(body: Retention, admin: AdminUser, platform: PlatformDep, uow: UowDep) -> RetentionOut:
    """Keep messages this many days (0: forever); the hourly purge applies it."""
    await service.set_retention(uow, platform, admin, body.days)
    return RetentionOut(days=body.days, source="admin")


@router.get("/v1/admin/audit", response_model=AuditPage)
async def audit_log(
    _admin: AdminUser,
    uow: UowDep,
    before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    since: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AuditPage:
    """The audit log, newest first."""
    if since is not None and since.tzinfo is None:
        raise InvalidRequest("since needs a time zone")
    rows = await audit_repository.list_events(uow.session, before_id=before, limit=limit, action=action, since=since)
    return AuditPage(
        items=[AuditEventOut.model_validate(r) for r in rows], next_before=rows[-1].id if len(rows) == limit else None
    )


@router.post("/v1/admin/audit/exports", response_model=AuditExportOut, status_code=202)
async def request_export(admin: AdminUser, platform: PlatformDep, uow: UowDep) -> AuditExportOut:
    """Export the whole audit log as NDJSON (a background task; poll the export)."""
    return AuditExportOut.model_validate(await service.request_export(uow, platform, admin))


@router.get("/v1/admin/audit/exports/{export_id}", response_model=AuditExportOut, responses={404: {}})
async def get_export(export_id: UserIdPath, _admin: AdminUser, uow: UowDep) -> AuditExportOut:
    export = await audit_repository.get_export(uow.session, export_id)
    if export is None:
        raise NotFound("no such export")
    return AuditExportOut.model_validate(export)


@router.get(
    "/v1/admin/audit/exports/{export_id}/content",
    response_class=PlainTextResponse,
    responses={404: {}, 409: {}, 200: {"content": {"application/x-ndjson": {}}}},
)
async def export_content(export_id: UserIdPath, _admin: AdminUser, uow: UowDep) -> PlainTextResponse:
    export = await audit_repository.get_export(uow.session, export_id)
    if export is None:
        raise NotFound("no such export")
    if export.status != "done" or export.content is None:
        raise Conflict(f"the export is {export.status}")
    return PlainTextResponse(export.content, media_type="application/x-ndjson")
