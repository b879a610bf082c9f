"""Real Celery workers (subprocesses) on the session's Redis and a fresh, migrated PostgreSQL database per test."""

from __future__ import annotations

import asyncio
import itertools
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from soa_platform.db import Database, utcnow
from soa_platform.identity.models import User
from soa_platform.messaging.models import Conversation, ConversationKind, Message
from soa_platform.migrate import upgrade
from soa_platform.notifications import service as notifications
from soa_platform.notifications.models import OutboxEntry
from soa_platform.settings import PlatformSettings
from soa_platform.worker import CeleryDispatcher, create_celery
from tests.platform.worker.webhook import WebhookReceiver
from tests.support.processes import ManagedProcess, wait_until

REPO = Path(__file__).resolve().parents[3]
KEY = "k" * 48
# broker timings low enough that a killed worker's task comes back within about a second
FAST_BROKER = {
    "SOA_BROKER_VISIBILITY_TIMEOUT": "1",
    "SOA_BROKER_UNACKED_RESTORE_INTERVAL": "0.25",
    "SOA_BROKER_UNACKED_RESTORE_THROTTLE": "1",
    "SOA_HEARTBEAT_INTERVAL_SECONDS": "0.5",
}
CELERY_WORKER = [sys.executable, "-m", "celery", "-A", "soa_platform.worker.celery_app", "worker"]
CELERY_WORKER += ["--pool=solo", "--concurrency=1", "-l", "info", "--without-gossip", "--without-mingle"]
CELERY_WORKER += ["--without-heartbeat"]


@dataclass
class WorkerEnv:
    """The environment of one test's worker and beat processes, and the settings the test itself uses."""

    tmp_path: Path
    values: dict[str, str]
    started: list[ManagedProcess] = field(default_factory=list)
    _names: Iterator[int] = field(default_factory=itertools.count)

    @property
    def settings(self) -> PlatformSettings:
        return PlatformSettings.model_validate(self.soa_fields())

    def soa_fields(self) -> dict[str, str]:
        """The SOA_* variables as settings fields (what the processes read from their environment)."""
        return {key.removeprefix("SOA_").lower(): value for key, value in self.values.items() if key.startswith("SOA_")}

    @property
    def worker_heartbeat(self) -> Path:
        return Path(self.values["SOA_WORKER_HEARTBEAT_FILE"])

    def start_worker(self, command: list[str] | None = None, **env: str) -> ManagedProcess:
        """Start a solo-pool worker; returns once it consumes (its heartbeat file appeared)."""
        self.worker_heartbeat.unlink(missing_ok=True)
        name = f"worker{next(self._names)}"
        process = ManagedProcess(
            command or [*CELERY_WORKER, "-n", f"{name}@%h"],
            self.tmp_path / f"{name}.log",
            env={**self.values, **env},
            cwd=REPO,
        ).start()
        self.started.append(process)
        wait_until(self.worker_heartbeat.exists, 30, f"{name} to consume", process.exit_problem)
        return process

    def start_beat(self) -> ManagedProcess:
        command = [sys.executable, "-c", "from soa_platform.worker import run_beat; "
                   "from soa_platform.settings import PlatformSettings; run_beat(PlatformSettings())"]  # fmt: skip
        process = ManagedProcess(command, self.tmp_path / "beat.log", env=self.values, cwd=REPO).start()
        self.started.append(process)
        return process


def worker_environment(tmp_path: Path, database_url: str, broker_url: str) -> dict[str, str]:
    return {
        "SOA_ENVIRONMENT": "test",
        "SOA_TENANT": "alpha",
        "SOA_DATABASE_URL": database_url,
        "SOA_BROKER_URL": broker_url,
        "SOA_REDIS_URL": broker_url if broker_url.startswith("redis") else "",
        "SOA_SIGNING_KEY": KEY,
        "SOA_SESSION_KEY": KEY,
        "SOA_WORKER_HEARTBEAT_FILE": str(tmp_path / "worker.heartbeat"),
        "SOA_BEAT_HEARTBEAT_FILE": str(tmp_path / "beat.heartbeat"),
        "SOA_BEAT_SCHEDULE_FILE": str(tmp_path / "beat-schedule"),
        "OTEL_EXPORTER_OTLP_ENDPOINT": "",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "",
        "PYTHONUNBUFFERED": "1",
        **FAST_BROKER,
    }


@pytest.fixture
def database_url(postgres_url: str) -> str:
    """A fresh PostgreSQL database at this release's schema."""
    upgrade(postgres_url)
    return postgres_url


@pytest.fixture
def worker_env(tmp_path: Path, database_url: str, redis_url: str) -> Iterator[WorkerEnv]:
    env = WorkerEnv(tmp_path, worker_environment(tmp_path, database_url, redis_url))
    yield env
    for process in env.started:
        process.kill()


@pytest.fixture
async def db(worker_env: WorkerEnv) -> AsyncIterator[Database]:
    database = Database(worker_env.settings.sqlalchemy_url)
    yield database
    await database.dispose()


@pytest.fixture
def dispatcher(worker_env: WorkerEnv) -> Iterator[CeleryDispatcher]:
    """Publishes like the api does, to the test's broker."""
    dispatcher = CeleryDispatcher(create_celery(worker_env.settings))
    yield dispatcher
    dispatcher.close()


@pytest.fixture
def webhook(worker_env: WorkerEnv) -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        worker_env.values["SOA_NOTIFICATION_WEBHOOK_URL"] = receiver.url
        yield receiver


async def eventually(check: Callable[[], Awaitable[Any]], within: float = 15.0, what: str = "condition") -> Any:
    """Poll the async `check` until it returns something truthy; return that."""
    deadline = time.monotonic() + within
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.05)


@dataclass(frozen=True)
class Chat:
    """Two users and a channel to post in."""

    author_id: int
    reader_id: int
    conversation_id: int


async def make_chat(db: Database) -> Chat:
    async with db.unit_of_work() as uow:
        author = User(email="author@alpha.gov.pk", display_name="Author")
        reader = User(email="reader@alpha.gov.pk", display_name="Reader")
        uow.session.add_all([author, reader])
        await uow.session.flush()
        conversation = Conversation(kind=ConversationKind.public, name="general", created_by=author.id)
        uow.session.add(conversation)
        await uow.session.flush()
        return Chat(author.id, reader.id, conversation.id)


_keys = itertools.count()


async def post(db: Database, chat: Chat, created_at: datetime | None = None, thread_root_id: int | None = None) -> int:
    """Insert a message directly (as the messaging service would); returns its id."""
    async with db.unit_of_work() as uow:
        message = Message(
            conversation_id=chat.conversation_id,
            author_id=chat.author_id,
            body="hello",
            idempotency_key=f"k{next(_keys)}",
            created_at=created_at or utcnow(),
            thread_root_id=thread_root_id,
        )
        uow.session.add(message)
        await uow.session.flush()
        return message.id


async def mention(db: Database, excerpt: str = "hi") -> OutboxEntry:
    """A committed message that mentions the reader, and its outbox entry."""
    chat = await make_chat(db)
    message_id = await post(db, chat)
    async with db.unit_of_work() as uow:
        return await notifications.add_mention(
            uow.session,
            message_id=message_id,
            conversation_id=chat.conversation_id,
            user_id=chat.reader_id,
            author_id=chat.author_id,
            excerpt=excerpt,
            tenant="alpha",
        )


async def reload_entry(db: Database, entry_id: int) -> OutboxEntry:
    async with db.sessions() as session:
        entry = await session.get(OutboxEntry, entry_id)
        assert entry is not None
        return entry
