"""`soa up`: one tenant's whole platform on one machine, with no external service.

SQLite replaces PostgreSQL, an in-process event bus replaces Redis pub/sub (there is one api
process), and Celery runs a real worker (with beat) on kombu's SQLAlchemy transport over a SQLite
file (docs/adr/0005). The supervisor owns its children and stops them all on SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

import httpx
from rich.console import Console

from soa_platform.db import Database
from soa_platform.errors import DomainError
from soa_platform.identity import service as identity
from soa_platform.meetings.embedded_janus import ABSENT_MESSAGE, embedded_janus
from soa_platform.settings import PlatformSettings

ADMIN_EMAIL = "admin@soa.local"
CHILD_STOP_SECONDS = 15


def _secret(path: Path) -> str:
    """A generated secret kept in the data dir (created once, 0600, never printed)."""
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def embedded_environment(host: str, port: int, data_dir: Path) -> dict[str, str]:
    data_dir = data_dir.resolve()
    secrets_dir = data_dir / "secrets"
    secrets_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    public_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104
    return {
        "SOA_ENVIRONMENT": "embedded",
        "SOA_TENANT": os.environ.get("SOA_TENANT", "local"),
        "SOA_DISPLAY_NAME": os.environ.get("SOA_DISPLAY_NAME", "SOA (embedded)"),
        "SOA_PUBLIC_URL": f"http://{public_host}:{port}",
        "SOA_DATABASE_URL": f"sqlite+aiosqlite:///{data_dir / 'soa.db'}",
        "SOA_BROKER_URL": f"sqla+sqlite:///{data_dir / 'broker.db'}",
        "SOA_LOCAL_ACCOUNTS": "true",
        "SOA_SIGNING_KEY": _secret(secrets_dir / "signing-key"),
        "SOA_SESSION_KEY": _secret(secrets_dir / "session-key"),
        "SOA_WORKER_HEARTBEAT_FILE": str(data_dir / "worker.heartbeat"),
        "SOA_BEAT_HEARTBEAT_FILE": str(data_dir / "beat.heartbeat"),
        "SOA_BEAT_SCHEDULE_FILE": str(data_dir / "beat-schedule"),
        "SOA_STORAGE_DRIVER": "local",  # files in a directory, moved through signed api URLs
        "SOA_STORAGE_LOCAL_DIR": str(data_dir / "files"),
    }


def create_admin(settings: PlatformSettings, email: str, password: str, name: str = "Administrator") -> None:
    async def create() -> None:
        db = Database(settings.sqlalchemy_url)
        try:
            async with db.unit_of_work() as uow:
                await identity.bootstrap_admin(uow.session, email, password, name)
        except DomainError as error:
            raise ValueError(error.message) from None
        finally:
            await db.dispose()

    asyncio.run(create())


def _first_admin(settings: PlatformSettings, data_dir: Path) -> str | None:
    """Create the first admin once; returns its password only on the run that created it."""
    marker = data_dir / "secrets" / "initial-admin-password"
    if marker.exists():
        return None
    password = secrets.token_urlsafe(12)
    create_admin(settings, ADMIN_EMAIL, password)
    marker.write_text(password + "\n")
    marker.chmod(0o600)
    return password


def run_embedded(*, host: str, port: int, data_dir: Path, console: Console) -> int:
    from soa_platform.migrate import upgrade

    data_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **embedded_environment(host, port, data_dir)}
    janus = embedded_janus(data_dir.resolve(), host)
    env.update(janus.env if janus else {"SOA_MEETINGS_ENABLED": "false"})
    os.environ.update(env)
    settings = PlatformSettings()
    console.print(f"[bold]SOA[/] embedded tenant [cyan]{settings.tenant}[/] in {data_dir.resolve()}")
    console.print("• migrating the database")
    console.print(
        f"• meetings: Janus at {janus.env['SOA_JANUS_PUBLIC_URL']}" if janus else f"• [yellow]{ABSENT_MESSAGE}[/]"
    )
    upgrade(settings.sqlalchemy_url)
    password = _first_admin(settings, data_dir)
    if not _prepare_files(settings, console):
        return 1
    soa = [sys.executable, "-m", "soa_operator.cli.main"]
    children = {
        "api": subprocess.Popen([*soa, "api", "--host", host, "--port", str(port)], env=env),
        "worker": subprocess.Popen([*soa, "worker", "--concurrency", "1", "--beat"], env=env),
    }
    if janus is not None:
        children["janus"] = janus.start(data_dir / "janus.log")
    stopping = False

    def stop(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        if not _wait_healthy(settings.public_url, children, lambda: stopping):
            console.print("[red]the api did not start; see the output above[/]")
            return 1
        _print_welcome(console, settings.public_url, password, data_dir)
        while not stopping:
            for name, child in children.items():
                if child.poll() is not None:
                    console.print(f"[red]{name} exited with code {child.returncode}; stopping[/]")
                    return 1
            time.sleep(0.5)
        console.print("stopping…")
        return 0
    finally:
        _stop_children(children)


def _prepare_files(settings: PlatformSettings, console: Console) -> bool:
    """The local object store's directories (idempotent), before the api and worker use them."""
    from soa_platform.files.bootstrap import init_storage
    from soa_platform.files.storage import StorageError

    try:
        report = asyncio.run(init_storage(settings, progress=lambda _message: None))
    except (StorageError, OSError) as error:
        console.print(f"[red]files: the storage directory is not usable: {error}[/]")
        return False
    console.print(f"• files: stored in {report.bucket}")
    return True


def _wait_healthy(url: str, children: dict[str, subprocess.Popen[bytes]], stopping: object) -> bool:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not stopping():  # type: ignore[operator]
        if any(child.poll() is not None for child in children.values()):
            return False
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False


def _stop_children(children: dict[str, subprocess.Popen[bytes]]) -> None:
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + CHILD_STOP_SECONDS
    for child in children.values():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def _print_welcome(console: Console, url: str, password: str | None, data_dir: Path) -> None:
    console.print(f"\n[green]SOA is up:[/] {url}   (API docs: {url}/docs, spec: {url}/openapi.json)")
    if password:
        console.print(f"first admin: [bold]{ADMIN_EMAIL}[/]  password: [bold]{password}[/]")
        console.print(f"(kept, readable only by you, in {data_dir / 'secrets' / 'initial-admin-password'})")
    else:
        console.print(
            f"log in as [bold]{ADMIN_EMAIL}[/] with the password in {data_dir / 'secrets' / 'initial-admin-password'}"
            " (or reset it: soa admin create --email …)"
        )
    console.print(
        f'log in:  curl -s -X POST {url}/v1/auth/login -H "content-type: application/json" '
        f'-d \'{{"email": "{ADMIN_EMAIL}", "password": "…"}}\''
    )
    console.print("stop with Ctrl-C\n")
