"""All SQL about users."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from soa_platform.identity.models import User


async def get(session: AsyncSession, user_id: int) -> User | None:
    return await session.get(User, user_id)


async def get_many(session: AsyncSession, user_ids: Sequence[int]) -> Sequence[User]:
    return (await session.scalars(select(User).where(User.id.in_(user_ids)))).all()


async def by_email(session: AsyncSession, email: str) -> User | None:
    return (await session.scalars(select(User).where(User.email == email.lower()))).first()


async def by_subject(session: AsyncSession, subject: str) -> User | None:
    return (await session.scalars(select(User).where(User.oidc_subject == subject))).first()


async def count_active(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(User).where(User.active.is_(True))) or 0)


async def add(session: AsyncSession, user: User) -> User:
    session.add(user)
    await session.flush()
    return user


async def search(session: AsyncSession, query: str | None, *, after_id: int, limit: int) -> Sequence[User]:
    statement = select(User).where(User.id > after_id).order_by(User.id).limit(limit)
    if query:
        pattern = f"%{query.lower()}%"
        statement = statement.where(
            or_(func.lower(User.email).like(pattern), func.lower(User.display_name).like(pattern))
        )
    return (await session.scalars(statement)).all()
