"""Real PostgreSQL and Redis servers for tests, each on a free loopback port with its data in a temp dir.

Both can be kill()ed (SIGKILL, like a crashed node) and start()ed again on the same port and data, so
tests can check that acknowledged writes survive. Nothing is shared with a system-wide instance.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.otlp import OtlpReceiver, SpanRecord
from tests.support.processes import ManagedProcess, free_port, wait_for_http, wait_for_port, wait_until

__all__ = [
    "ManagedProcess",
    "OtlpReceiver",
    "PostgresServer",
    "RedisServer",
    "SpanRecord",
    "free_port",
    "wait_for_http",
    "wait_for_port",
]

PG_BINDIR = Path(os.environ.get("SOA_PG_BINDIR", "/usr/lib/postgresql/15/bin"))
_DB_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _pg_os_user() -> str | None:
    """Postgres refuses to run as root: as root, run it as the `postgres` user."""
    return "postgres" if os.geteuid() == 0 else None


@dataclass
class PostgresServer:
    """A private PostgreSQL cluster: superuser `postgres` over the unix socket, role/database `soa` over TCP."""

    base_dir: Path
    port: int = field(default_factory=free_port)
    host: str = "127.0.0.1"
    user: str = "soa"
    password: str = "soa-test-password"
    database: str = "soa"
    bindir: Path = PG_BINDIR
    _process: ManagedProcess | None = field(default=None, init=False, repr=False)

    @classmethod
    def launch(cls, base_dir: Path | None = None) -> PostgresServer:
        """initdb, start and create the `soa` role and database; the caller must close() it."""
        if not (PG_BINDIR / "postgres").exists():
            raise RuntimeError(f"no PostgreSQL in {PG_BINDIR}: run scripts/bootstrap.sh (or set SOA_PG_BINDIR)")
        server = cls(Path(base_dir or tempfile.mkdtemp(prefix="soa-pg-")))
        try:
            server.init()
            server.start()
            pw = server.password.replace("'", "''")
            server.psql(f"CREATE ROLE \"{server.user}\" LOGIN CREATEDB PASSWORD '{pw}'")
            server.psql(f'CREATE DATABASE "{server.database}" OWNER "{server.user}"')
        except BaseException:
            server.close()
            raise
        return server

    @property
    def data_dir(self) -> Path:
        return self.base_dir / "data"

    @property
    def socket_dir(self) -> Path:
        return self.base_dir / "sock"

    @property
    def log_path(self) -> Path:
        return self.base_dir / "postgres.log"

    @property
    def url(self) -> str:
        """SQLAlchemy async URL of the `soa` database."""
        return self.url_for(self.database)

    @property
    def dsn(self) -> str:
        """libpq/asyncpg DSN of the `soa` database."""
        return self.dsn_for(self.database)

    def url_for(self, database: str) -> str:
        return f"postgresql+asyncpg://{self.user}:{self.password}@{self.host}:{self.port}/{database}"

    def dsn_for(self, database: str) -> str:
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{database}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.running

    def init(self) -> None:
        """Create the cluster (trust on the unix socket, SCRAM passwords over TCP)."""
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        if (user := _pg_os_user()) is not None:
            for path in (self.base_dir, self.socket_dir):
                shutil.chown(path, user, user)
        cmd = [str(self.bindir / "initdb"), "-D", str(self.data_dir), "-U", "postgres", "-E", "UTF8"]
        cmd += ["--locale=C", "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync", "--no-instructions"]
        subprocess.run(cmd, check=True, capture_output=True, user=user, group=user, extra_groups=[] if user else None)

    def start(self, timeout: float = 30.0) -> None:
        """Start the postmaster on the same port and data; return once it accepts connections."""
        if self.running:
            return
        cmd = [str(self.bindir / "postgres"), "-D", str(self.data_dir), "-p", str(self.port)]
        for setting in (f"listen_addresses={self.host}", f"unix_socket_directories={self.socket_dir}", "fsync=off"):
            cmd += ["-c", setting]
        deadline = time.monotonic() + timeout
        while True:
            self._process = ManagedProcess(cmd, self.log_path, user=_pg_os_user()).start()
            try:
                wait_until(self._ready, max(deadline - time.monotonic(), 0.1), "postgres", self._process.exit_problem)
                return
            except RuntimeError:
                # After kill() the old backends may still hold shared memory for a moment: retry.
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def _ready(self) -> bool:
        cmd = [str(self.bindir / "pg_isready"), "-q", "-h", self.host, "-p", str(self.port), "-t", "1"]
        return subprocess.run(cmd, check=False).returncode == 0

    def stop(self, timeout: float = 15.0) -> None:
        """Fast shutdown (SIGINT: clients are disconnected, a checkpoint is written)."""
        if self._process is not None:
            self._process.terminate(timeout, sig=signal.SIGINT)

    def kill(self) -> None:
        """SIGKILL the postmaster and all its backends, like a crashed node; start() recovers from WAL."""
        if self._process is not None:
            self._process.kill()

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run one statement as superuser over the unix socket; return unaligned, tuples-only output."""
        cmd = [str(self.bindir / "psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", str(self.socket_dir)]
        cmd += ["-p", str(self.port), "-U", "postgres", "-d", database, "-c", sql]
        done = subprocess.run(cmd, check=False, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"psql failed ({done.returncode}) for {sql!r}: {done.stderr.strip()}")
        return done.stdout

    def create_database(self, name: str | None = None) -> str:
        """A fresh, empty database owned by `soa` (from template0); returns its SQLAlchemy URL."""
        name = name or f"test_{uuid.uuid4().hex[:12]}"
        if not _DB_NAME.match(name):
            raise ValueError(f"invalid database name {name!r}")
        self.psql(f'CREATE DATABASE "{name}" OWNER "{self.user}" TEMPLATE template0 STRATEGY FILE_COPY')
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """Drop ``name``, disconnecting whoever is still connected."""
        if not _DB_NAME.match(name):
            raise ValueError(f"invalid database name {name!r}")
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        """Stop (or kill) the server and delete its files."""
        try:
            self.stop()
        finally:
            self.kill()
            shutil.rmtree(self.base_dir, ignore_errors=True)


@dataclass
class RedisServer:
    """A private redis-server; with ``appendonly`` every acknowledged write is fsynced to the AOF first."""

    base_dir: Path
    port: int = field(default_factory=free_port)
    host: str = "127.0.0.1"
    appendonly: bool = True
    binary: str = "redis-server"
    _process: ManagedProcess | None = field(default=None, init=False, repr=False)

    @classmethod
    def launch(cls, base_dir: Path | None = None, appendonly: bool = True) -> RedisServer:
        """Start a server in ``base_dir`` (a new temp dir by default); the caller must close() it."""
        if shutil.which("redis-server") is None:
            raise RuntimeError("redis-server is not installed: run scripts/bootstrap.sh")
        server = cls(Path(base_dir or tempfile.mkdtemp(prefix="soa-redis-")), appendonly=appendonly)
        try:
            server.start()
        except BaseException:
            server.close()
            raise
        return server

    @property
    def url(self) -> str:
        return self.url_for(0)

    def url_for(self, db: int) -> str:
        return f"redis://{self.host}:{self.port}/{db}"

    @property
    def log_path(self) -> Path:
        return self.base_dir / "redis.log"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.running

    def start(self, timeout: float = 15.0) -> None:
        """Start on the same port and dir (replaying the AOF); return once PING answers PONG."""
        if self.running:
            return
        cmd = [self.binary, "--port", str(self.port), "--bind", self.host, "--dir", str(self.base_dir)]
        cmd += ["--save", "", "--daemonize", "no", "--logfile", ""]
        cmd += ["--appendonly", "yes", "--appendfsync", "always"] if self.appendonly else ["--appendonly", "no"]
        self._process = ManagedProcess(cmd, self.log_path).start()
        wait_until(self.ping, timeout, "redis-server PING", self._process.exit_problem)

    def command(self, *args: str) -> str:
        """Send one command; return the first reply line (fine for PING, FLUSHALL, DBSIZE...)."""
        payload = f"*{len(args)}\r\n".encode() + b"".join(
            b"$%d\r\n%s\r\n" % (len(arg.encode()), arg.encode()) for arg in args
        )
        with socket.create_connection((self.host, self.port), timeout=5) as sock:
            sock.sendall(payload)
            reply = b""
            while not reply.endswith(b"\r\n"):
                chunk = sock.recv(4096)
                if not chunk:
                    break
                reply += chunk
        return reply.decode(errors="replace").split("\r\n", 1)[0]

    def ping(self) -> bool:
        try:
            return self.command("PING") == "+PONG"
        except OSError:
            return False

    def flushall(self) -> None:
        if (reply := self.command("FLUSHALL")) != "+OK":
            raise RuntimeError(f"FLUSHALL failed: {reply}")

    def stop(self, timeout: float = 10.0) -> None:
        """Graceful shutdown (SIGTERM)."""
        if self._process is not None:
            self._process.terminate(timeout)

    def kill(self) -> None:
        """SIGKILL redis-server, like a crashed node."""
        if self._process is not None:
            self._process.kill()

    def close(self) -> None:
        """Stop (or kill) the server and delete its files."""
        try:
            self.stop()
        finally:
            self.kill()
            shutil.rmtree(self.base_dir, ignore_errors=True)
