"""The data the messaging load benchmark runs on, written straight into PostgreSQL before the run.

Users (one precomputed argon2 hash, no login storm: tokens come from the platform's TokenService), public
channels of 20-50 members (each user in about `channels_per_user` of them), two direct conversations per
user (a ring), and `messages` messages in every conversation so a 60-message page is full. Bulk inserts
and COPY through the platform's own tables, then the conversation and read-state columns the API keeps
(last_message_id, last_read_message_id) are set as if everyone had read everything.
"""

from __future__ import annotations

import itertools
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, text

from soa_platform.db import create_engine
from soa_platform.identity.models import User
from soa_platform.identity.passwords import hash_password
from soa_platform.identity.tokens import TokenService
from soa_platform.messaging.models import Conversation, ConversationKind
from soa_platform.settings import PlatformSettings

# fmt: off
WORDS = (
    "budget", "meeting", "report", "draft", "review", "minutes", "circular", "notice", "approval", "file", "section",
    "officer", "ministry", "deadline", "update", "schedule", "agenda", "training", "leave", "request", "summary",
    "budget", "figures", "quarter", "audit", "memo", "please", "kindly", "attached", "forwarded", "noted",
    "discussed", "pending", "urgent", "tomorrow", "today", "week", "month", "office",
)
# fmt: on


def sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choices(WORDS, k=words)).capitalize() + "."


@dataclass
class Account:
    user_id: int
    token: str
    conversations: list[int] = field(default_factory=list)


@dataclass
class Seeded:
    accounts: list[Account]
    members: dict[int, list[int]]  # conversation id -> member user ids
    channels: int
    directs: int
    messages: int
    seconds: float


async def seed(
    settings: PlatformSettings,
    users: int,
    *,
    channels_per_user: float,
    messages: int,
    rng: random.Random,
    min_members: int = 20,
    max_members: int = 50,
) -> Seeded:
    started = time.monotonic()
    engine = create_engine(settings.sqlalchemy_url)
    try:
        async with engine.begin() as conn:
            user_ids = await _insert_users(conn, users)
            sizes = _channel_sizes(users, channels_per_user, min_members, max_members, rng)
            channel_members = [rng.sample(user_ids, size) for size in sizes]
            _give_everyone_a_channel(user_ids, channel_members, rng)
            direct_pairs = _direct_pairs(user_ids)
            rows = [
                {"kind": ConversationKind.public, "name": f"load-{i:05d}", "direct_key": None, "created_by": members[0]}
                for i, members in enumerate(channel_members)
            ]
            rows += [
                {"kind": ConversationKind.direct, "name": None, "direct_key": f"{a},{b}", "created_by": a}
                for a, b in direct_pairs
            ]
            result = await conn.execute(
                insert(Conversation).returning(Conversation.id, sort_by_parameter_order=True), rows
            )
            conversation_ids = [int(row[0]) for row in result.all()]
            all_members = [*channel_members, *[list(pair) for pair in direct_pairs]]
            members = dict(zip(conversation_ids, all_members, strict=True))
            raw = (await conn.get_raw_connection()).driver_connection
            assert raw is not None
            await _copy_memberships(raw, members, channel_owner_count=len(channel_members))
            total = await _copy_messages(raw, members, messages, rng)
            await conn.execute(
                text(
                    "UPDATE conversations c SET last_message_id = m.last FROM "
                    "(SELECT conversation_id, max(id) AS last FROM messages GROUP BY conversation_id) m "
                    "WHERE m.conversation_id = c.id"
                )
            )
            await conn.execute(
                text(
                    "UPDATE memberships ms SET last_read_message_id = c.last_message_id FROM conversations c "
                    "WHERE c.id = ms.conversation_id"
                )
            )
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("VACUUM ANALYZE"))
    finally:
        await engine.dispose()
    tokens = TokenService(settings)
    by_user: dict[int, Account] = {uid: Account(uid, tokens.issue(uid)[0]) for uid in user_ids}
    for cid, member_ids in members.items():
        for uid in member_ids:
            by_user[uid].conversations.append(cid)
    return Seeded(
        accounts=[by_user[uid] for uid in user_ids],
        members=members,
        channels=len(channel_members),
        directs=len(direct_pairs),
        messages=total,
        seconds=time.monotonic() - started,
    )


async def _insert_users(conn: Any, users: int) -> list[int]:
    password_hash = hash_password("bench-password-not-used")  # one hash: nobody logs in
    rows = [
        {"email": f"lt{i:05d}@bench.gov.pk", "display_name": f"Load user {i}", "password_hash": password_hash}
        for i in range(users)
    ]
    result = await conn.execute(insert(User).returning(User.id, sort_by_parameter_order=True), rows)
    return [int(row[0]) for row in result.all()]


def _channel_sizes(users: int, per_user: float, low: int, high: int, rng: random.Random) -> list[int]:
    low, high = min(low, users), min(high, users)
    count = max(1, round(users * per_user / ((low + high) / 2)))
    return [rng.randint(low, high) for _ in range(count)]


def _give_everyone_a_channel(user_ids: list[int], channels: list[list[int]], rng: random.Random) -> None:
    """Random sampling leaves a few users in no channel: put each in one."""
    placed = {uid for members in channels for uid in members}
    for uid in user_ids:
        if uid not in placed:
            rng.choice(channels).append(uid)


def _direct_pairs(user_ids: list[int]) -> list[tuple[int, int]]:
    """Each user talks directly to the next one (a ring): two direct conversations each."""
    if len(user_ids) < 3:
        return []
    ring = [*user_ids, user_ids[0]]
    return [(min(a, b), max(a, b)) for a, b in itertools.pairwise(ring)]


async def _copy_memberships(raw: Any, members: dict[int, list[int]], channel_owner_count: int) -> None:
    now = datetime.now(UTC)
    records = []
    for index, (cid, member_ids) in enumerate(members.items()):
        owner = member_ids[0] if index < channel_owner_count else None
        records += [(cid, uid, uid == owner, now, 0) for uid in member_ids]
    columns = ["conversation_id", "user_id", "is_owner", "joined_at", "last_read_message_id"]
    await raw.copy_records_to_table("memberships", records=records, columns=columns)


async def _copy_messages(raw: Any, members: dict[int, list[int]], per_conversation: int, rng: random.Random) -> int:
    """`per_conversation` messages in each, older than the run, in id order of time."""
    start = datetime.now(UTC) - timedelta(days=7)
    records = []
    step = timedelta(seconds=7 * 24 * 3600 / max(1, per_conversation))
    bodies = [sentence(rng, rng.randint(4, 30)) for _ in range(5000)]
    for k in range(per_conversation):  # interleaved: ids grow with time across conversations
        created = start + k * step
        for cid, member_ids in members.items():
            records.append((cid, rng.choice(member_ids), rng.choice(bodies), 0, f"seed-{cid}-{k}", created))
    columns = ["conversation_id", "author_id", "body", "reply_count", "idempotency_key", "created_at"]
    await raw.copy_records_to_table("messages", records=records, columns=columns)
    return len(records)
