"""Identity rules: who may log in, first-login provisioning, roles, local accounts."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from soa_platform.audit.service import record
from soa_platform.db import utcnow
from soa_platform.errors import Conflict, Forbidden, InvalidRequest, NotAuthenticated, NotFound
from soa_platform.identity import repository
from soa_platform.identity.models import Role, User
from soa_platform.identity.passwords import hash_password, verify_password
from soa_platform.identity.tokens import TokenService, VerifiedToken
from soa_platform.settings import PlatformSettings

MIN_PASSWORD_LENGTH = 12


def email_allowed(settings: PlatformSettings, email: str) -> bool:
    domain = email.rsplit("@", 1)[-1].lower()
    return not settings.allowed_email_domains or domain in settings.allowed_email_domains


async def resolve_user(session: AsyncSession, settings: PlatformSettings, token: VerifiedToken) -> User:
    """The user a verified token stands for; an OIDC user is created on first login."""
    if token.source == "local":
        user = await repository.get(session, int(token.subject))
        if user is None or not user.active:
            raise NotAuthenticated("account is disabled")
        return user
    user = await repository.by_subject(session, token.subject)
    if user is not None:
        if not user.active:
            raise NotAuthenticated("account is disabled")
        return user
    return await _first_oidc_login(session, settings, token)


async def _first_oidc_login(session: AsyncSession, settings: PlatformSettings, token: VerifiedToken) -> User:
    email = str(token.claims.get("email") or "").lower()
    if not email or token.claims.get("email_verified") is False:
        raise NotAuthenticated("the identity provider did not supply a verified e-mail address")
    if not email_allowed(settings, email):
        await record(session, "login.refused", actor_email=email, reason="email domain not allowed")
        raise Forbidden("your e-mail domain is not allowed in this workspace", keep_changes=True)
    existing = await repository.by_email(session, email)
    if existing is not None:
        if existing.oidc_subject is not None or not existing.active:
            raise NotAuthenticated("this e-mail address belongs to another account")
        existing.oidc_subject = token.subject  # a pre-created (invited) account links on first login
        existing.last_login_at = utcnow()
        await record(session, "login", actor=existing, method="oidc", first=True)
        return existing
    await _check_seats(session, settings)
    name = str(token.claims.get("name") or token.claims.get("preferred_username") or email.split("@")[0])
    role = Role.admin if email in settings.admins else Role.member
    user = await repository.add(
        session,
        User(email=email, display_name=name[:200], role=role, oidc_subject=token.subject, last_login_at=utcnow()),
    )
    await record(session, "login", actor=user, method="oidc", first=True)
    return user


async def _check_seats(session: AsyncSession, settings: PlatformSettings) -> None:
    if await repository.count_active(session) >= settings.seats:
        raise Forbidden(f"this workspace has used all of its {settings.seats} seats")


async def login_local(
    session: AsyncSession, settings: PlatformSettings, tokens: TokenService, email: str, password: str, ip: str
) -> tuple[str, int]:
    if not settings.local_accounts:
        raise Forbidden("local accounts are disabled; log in through the identity provider")
    user = await repository.by_email(session, email)
    if not verify_password(user.password_hash if user else None, password) or user is None or not user.active:
        await record(session, "login.failed", actor_email=email.lower(), ip=ip)
        raise NotAuthenticated("wrong e-mail or password", keep_changes=True)
    user.last_login_at = utcnow()
    await record(session, "login", actor=user, method="password", ip=ip)
    return tokens.issue(user.id)


async def create_user(
    session: AsyncSession,
    settings: PlatformSettings,
    actor: User | None,
    *,
    email: str,
    display_name: str,
    role: Role,
    password: str | None,
) -> User:
    email = email.lower()
    if not email_allowed(settings, email) and role is not Role.guest:
        raise InvalidRequest("only guests may have an e-mail address outside the allowed domains")
    if await repository.by_email(session, email) is not None:
        raise Conflict("a user with this e-mail address exists")
    if password is not None and len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidRequest(f"passwords need at least {MIN_PASSWORD_LENGTH} characters")
    await _check_seats(session, settings)
    user = await repository.add(
        session,
        User(
            email=email,
            display_name=display_name,
            role=role,
            password_hash=hash_password(password) if password else None,
        ),
    )
    await record(session, "user.created", actor=actor, target_type="user", target_id=user.id, role=role.value)
    return user


async def update_user(
    session: AsyncSession, actor: User, user_id: int, *, role: Role | None, active: bool | None
) -> User:
    user = await repository.get(session, user_id)
    if user is None:
        raise NotFound("no such user")
    if user.id == actor.id and (role not in (None, Role.admin) or active is False):
        raise InvalidRequest("admins cannot demote or disable themselves")
    if role is not None and role is not user.role:
        await record(session, "user.role_changed", actor=actor, target_type="user", target_id=user.id,
                     old=user.role.value, new=role.value)  # fmt: skip
        user.role = role
    if active is not None and active != user.active:
        await record(session, "user.disabled" if not active else "user.enabled", actor=actor, target_type="user",
                     target_id=user.id)  # fmt: skip
        user.active = active
    return user


async def bootstrap_admin(
    session: AsyncSession, email: str, password: str, display_name: str = "Administrator"
) -> User:
    """Create the first admin, or reset an existing account to admin with this password (idempotent)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidRequest(f"passwords need at least {MIN_PASSWORD_LENGTH} characters")
    user = await repository.by_email(session, email)
    if user is None:
        user = await repository.add(
            session,
            User(
                email=email.lower(), display_name=display_name, role=Role.admin, password_hash=hash_password(password)
            ),
        )
        await record(session, "user.created", target_type="user", target_id=user.id, role="admin", via="cli")
        return user
    if user.role is not Role.admin:
        await record(session, "user.role_changed", target_type="user", target_id=user.id, old=user.role.value,
                     new="admin", via="cli")  # fmt: skip
    user.role, user.active = Role.admin, True
    if not verify_password(user.password_hash, password):
        user.password_hash = hash_password(password)
        await record(session, "user.password_reset", target_type="user", target_id=user.id, via="cli")
    return user
