"""The tenant platform as it runs in production: `soa api` and `soa worker` subprocesses on real PostgreSQL
and Redis, driven over HTTP like a client would."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from soa_platform.db import Database
from soa_platform.identity import service as identity
from soa_platform.identity.models import Role
from soa_platform.identity.tokens import TokenService
from soa_platform.migrate import upgrade
from soa_platform.settings import PlatformSettings
from tests.support.processes import ManagedProcess, free_port, wait_until

REPO = Path(__file__).resolve().parents[3]
SOA = str(Path(sys.executable).with_name("soa"))
TENANT = "alpha"
KEY = "k" * 48
START_TIMEOUT = 45.0  # two cores shared with other suites: a cold interpreter can take a while
# a killed worker's task comes back within about a second, and an enqueue lost with a dead api or Redis
# is swept up within a few seconds
FAST_RECOVERY = {
    "SOA_BROKER_VISIBILITY_TIMEOUT": "1",
    "SOA_BROKER_UNACKED_RESTORE_INTERVAL": "0.25",
    "SOA_BROKER_UNACKED_RESTORE_THROTTLE": "1",
    "SOA_HEARTBEAT_INTERVAL_SECONDS": "0.5",
    "SOA_OUTBOX_SWEEP_SECONDS": "1",
    "SOA_OUTBOX_RETRY_AFTER_SECONDS": "2",
}


@dataclass(frozen=True)
class Member:
    id: int
    email: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Stack:
    """One tenant's api and worker processes (started on demand) and the environment they share."""

    tmp_path: Path
    env: dict[str, str]
    api_port: int = field(default_factory=free_port)
    api: ManagedProcess | None = None
    worker: ManagedProcess | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def settings(self) -> PlatformSettings:
        """What the processes read from their environment."""
        fields = {key.removeprefix("SOA_").lower(): value for key, value in self.env.items() if key.startswith("SOA_")}
        return PlatformSettings.model_validate(fields)

    @property
    def worker_heartbeat(self) -> Path:
        return Path(self.env["SOA_WORKER_HEARTBEAT_FILE"])

    async def start_api(self) -> ManagedProcess:
        """Start (or restart) `soa api`; returns once /readyz answers 200."""
        if self.api is None:
            command = [SOA, "api", "--host", "127.0.0.1", "--port", str(self.api_port)]
            self.api = ManagedProcess(command, self.tmp_path / "api.log", env=self.env, cwd=REPO)
        process = self.api.start()  # from this thread: a child dies with the thread that started it
        await asyncio.to_thread(process.wait_for_http, f"{self.base_url}/readyz", START_TIMEOUT)
        return process

    async def start_worker(self) -> ManagedProcess:
        """Start (or restart) `soa worker` with its embedded beat; returns once it consumes (heartbeat file)."""
        if self.worker is None:
            command = [SOA, "worker", "--concurrency", "1", "--beat"]
            self.worker = ManagedProcess(command, self.tmp_path / "worker.log", env=self.env, cwd=REPO)
        self.worker_heartbeat.unlink(missing_ok=True)
        process = self.worker.start()
        await asyncio.to_thread(
            wait_until, self.worker_heartbeat.exists, START_TIMEOUT, "the worker to consume", process.exit_problem
        )
        return process

    def stop(self) -> None:
        for process in (self.api, self.worker):
            if process is not None:
                process.kill()

    async def members(self, *names: str, role: Role = Role.member) -> list[Member]:
        """Create accounts (directly in the database, as an admin would) and issue each a token."""
        settings = self.settings
        tokens = TokenService(settings)
        db = Database(settings.sqlalchemy_url)
        try:
            created = []
            async with db.unit_of_work() as uow:
                for name in names:
                    email = f"{name}@{settings.tenant}.gov.pk"
                    user = await identity.create_user(
                        uow.session, settings, None, email=email, display_name=name, role=role, password=None
                    )
                    created.append((user.id, email))
            return [Member(user_id, email, tokens.issue(user_id)[0]) for user_id, email in created]
        finally:
            await db.dispose()


def platform_environment(tmp_path: Path, database_url: str, redis_url: str, api_port: int) -> dict[str, str]:
    return {
        "SOA_ENVIRONMENT": "test",
        "SOA_TENANT": TENANT,
        "SOA_PUBLIC_URL": f"http://127.0.0.1:{api_port}",
        "SOA_DATABASE_URL": database_url,
        "SOA_REDIS_URL": redis_url,
        "SOA_BROKER_URL": redis_url,
        "SOA_SIGNING_KEY": KEY,
        "SOA_SESSION_KEY": "s" * 48,
        "SOA_LOCAL_ACCOUNTS": "true",
        "SOA_ALLOWED_EMAIL_DOMAINS": f"{TENANT}.gov.pk",
        "SOA_RATE_LIMIT": "100000/second",
        "SOA_METRICS_PORT": "0",
        "SOA_NOTIFICATION_WEBHOOK_URL": "",
        "SOA_WORKER_HEARTBEAT_FILE": str(tmp_path / "worker.heartbeat"),
        "SOA_BEAT_HEARTBEAT_FILE": str(tmp_path / "beat.heartbeat"),
        "SOA_BEAT_SCHEDULE_FILE": str(tmp_path / "beat-schedule"),
        "OTEL_EXPORTER_OTLP_ENDPOINT": "",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "",
        "PYTHONUNBUFFERED": "1",
        **FAST_RECOVERY,
    }


def make_stack(tmp_path: Path, database_url: str, redis_url: str) -> Stack:
    """The environment of one tenant's processes on a fresh database (migrated here) and Redis."""
    upgrade(database_url)
    port = free_port()
    return Stack(tmp_path, platform_environment(tmp_path, database_url, redis_url, port), api_port=port)


@pytest.fixture
def stack(tmp_path: Path, postgres_url: str, redis_url: str) -> Iterator[Stack]:
    """A migrated database, an empty Redis and the environment of the tenant's processes (none started yet)."""
    running = make_stack(tmp_path, postgres_url, redis_url)
    yield running
    running.stop()
