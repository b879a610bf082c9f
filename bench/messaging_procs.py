"""The processes of the messaging load benchmark: PostgreSQL, Redis, `soa api`, `soa worker`, and their CPU.

PostgreSQL and Redis come from tests/support/servers.py (private instances on free loopback ports, data in
temp dirs); the api and the worker are the real `soa` commands as subprocesses in their own process groups,
SIGKILLed by the kernel if this process dies. CPU is read from /proc for each process tree.
"""

from __future__ import annotations

import collections
import contextlib
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.processes import ManagedProcess, free_port, http_ok, wait_until
from tests.support.servers import PostgresServer, RedisServer

CLK_TCK = os.sysconf("SC_CLK_TCK")
VENV_BIN = Path(sys.executable).parent
TENANT = "bench"
SIGNING_KEY = "bench-signing-key-" + "k" * 30  # 48 characters, loopback only
SESSION_KEY = "bench-session-key-" + "s" * 30
API_START_TIMEOUT = 60.0
WORKER_SETTLE_SECONDS = 3.0


# ---- /proc ---------------------------------------------------------------------------------------------


def _stat_fields(pid: int | str) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def process_table() -> dict[int, tuple[int, float]]:
    """pid -> (ppid, CPU seconds of the process plus its reaped children) for every live process.

    utime+stime+cutime+cstime: a short-lived child (a PostgreSQL backend, a Celery task process) that its
    parent has waited for is still counted, in the parent's cutime/cstime, and nothing is counted twice.
    """
    table: dict[int, tuple[int, float]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(entry.name)
        if fields is None:
            continue
        ticks = sum(int(value) for value in fields[11:15])  # stat(5) fields 14-17
        table[int(entry.name)] = (int(fields[1]), ticks / CLK_TCK)
    return table


def tree_cpu(root: int | None, table: dict[int, tuple[int, float]]) -> float:
    """CPU seconds of ``root`` and all its live descendants (0 if it is gone)."""
    if root is None or root not in table:
        return 0.0
    children: dict[int, list[int]] = collections.defaultdict(list)
    for pid, (ppid, _) in table.items():
        children[ppid].append(pid)
    total, queue = 0.0, [root]
    while queue:
        pid = queue.pop()
        total += table[pid][1]
        queue.extend(children.get(pid, ()))
    return total


def _own_cpu() -> float:
    fields = _stat_fields("self")
    return (int(fields[11]) + int(fields[12])) / CLK_TCK if fields else 0.0


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def machine_busy_seconds() -> float:
    """CPU seconds every process on the machine used (from /proc/stat): the rest is idle or iowait."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def rss_mb(pid: int | None) -> float:
    if pid is None:
        return 0.0
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


CPU_GROUPS = ("api", "worker", "postgres", "redis", "generator", "py-spy")


class CpuMeter:
    """CPU seconds per process group since the last ``lap()``; "others" is the rest of the machine."""

    def __init__(self, roots: dict[str, list[int | None]]) -> None:
        self.roots = roots
        self._last = self._sample()

    def _sample(self) -> dict[str, float]:
        table = process_table()
        sample = {name: sum(tree_cpu(pid, table) for pid in pids) for name, pids in self.roots.items()}
        sample["generator"] = _own_cpu()  # not its tree: the servers above are its children
        sample["machine"] = machine_busy_seconds()
        return sample

    def lap(self) -> dict[str, float]:
        now = self._sample()
        delta = {name: max(0.0, now[name] - self._last.get(name, now[name])) for name in now}
        self._last = now
        delta["others"] = max(0.0, delta.pop("machine") - sum(delta.values()))
        return delta


# ---- the stack -----------------------------------------------------------------------------------------


@dataclass
class Stack:
    """PostgreSQL, Redis, the api and the worker of one tenant on this machine."""

    workdir: Path
    api_workers: int = 1
    worker_concurrency: int = 1
    rate_limit: str = "100/second"
    seats: int = 100_000
    postgres: PostgresServer | None = None
    redis: RedisServer | None = None
    api: ManagedProcess | None = None
    worker: ManagedProcess | None = None
    port: int = field(default_factory=free_port)
    api_env: dict[str, str] = field(default_factory=dict)  # extra variables for the api only (experiments)
    notes: list[str] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def public_url(self) -> str:
        return self.base_url

    def settings_values(self) -> dict[str, Any]:
        """What both the subprocesses (as SOA_* variables) and this process (tokens, seeding) use."""
        assert self.postgres is not None
        assert self.redis is not None
        return {
            "environment": "test",
            "tenant": TENANT,
            "public_url": self.public_url,
            "database_url": self.postgres.url,
            "redis_url": self.redis.url,
            "broker_url": self.redis.url_for(1),
            "signing_key": SIGNING_KEY,
            "session_key": SESSION_KEY,
            "local_accounts": True,
            "rate_limit": self.rate_limit,
            "seats": self.seats,
            "worker_heartbeat_file": str(self.workdir / "worker.heartbeat"),
            "beat_heartbeat_file": str(self.workdir / "beat.heartbeat"),
        }

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "SOA_"))}  # no trace exporter
        for key, value in self.settings_values().items():
            env[f"SOA_{key.upper()}"] = "true" if value is True else str(value)
        env["NO_PROXY"] = "127.0.0.1,localhost"
        return env

    def start_stores(self) -> None:
        self.postgres = PostgresServer.launch(self.workdir / "pg")
        # pg_stat_statements: statements per request and the costliest ones (a restart loads it)
        self.postgres.psql("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
        self.postgres.stop()
        self.postgres.start()
        self.postgres.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements", self.postgres.database)
        self.redis = RedisServer.launch(self.workdir / "redis", appendonly=False)

    def reset_database_stats(self) -> None:
        assert self.postgres is not None
        self.postgres.psql("SELECT pg_stat_statements_reset(), pg_stat_reset()", self.postgres.database)

    def database_stats(self) -> dict[str, Any]:
        """Since reset_database_stats(): statements and commits, the costliest statements, scans per table."""
        assert self.postgres is not None
        pg, db = self.postgres, self.postgres.database
        totals = pg.psql(
            "SELECT coalesce(sum(calls), 0), coalesce(sum(total_exec_time), 0) FROM pg_stat_statements "
            "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
            db,
        ).split("|")
        commits = pg.psql(
            "SELECT xact_commit, xact_rollback FROM pg_stat_database WHERE datname = current_database()", db
        )
        statements = []
        for line in pg.psql(
            "SELECT calls, round(total_exec_time::numeric, 1), round(mean_exec_time::numeric, 3), rows, "
            "left(regexp_replace(query, '\\s+', ' ', 'g'), 150) FROM pg_stat_statements "
            "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "ORDER BY total_exec_time DESC LIMIT 60",
            db,
        ).splitlines():
            calls, total_ms, mean_ms, rows, query = line.split("|", 4)
            statements.append(
                {"calls": int(calls), "total_ms": float(total_ms), "mean_ms": float(mean_ms), "rows": int(rows),
                 "query": query}
            )  # fmt: skip
        tables = []
        for line in pg.psql(
            "SELECT relname, seq_scan, seq_tup_read, coalesce(idx_scan, 0), n_live_tup FROM pg_stat_user_tables "
            "WHERE seq_scan > 0 OR idx_scan > 0 ORDER BY seq_tup_read DESC",
            db,
        ).splitlines():
            name, seq_scan, seq_read, idx_scan, live = line.split("|")
            tables.append(
                {"table": name, "seq_scan": int(seq_scan), "seq_tup_read": int(seq_read), "idx_scan": int(idx_scan),
                 "rows": int(live)}
            )  # fmt: skip
        commit, rollback = (int(v) for v in commits.strip().split("|"))
        return {
            "statements": int(float(totals[0])),
            "statement_ms": float(totals[1]),
            "commits": commit,
            "rollbacks": rollback,
            "top": statements,
            "tables": tables,
        }

    def migrate(self) -> None:
        assert self.postgres is not None
        done = subprocess.run(
            [str(VENV_BIN / "soa"), "migrate"], env=self.environment(), capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"soa migrate failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")

    def api_command(self) -> list[str]:
        return [
            str(VENV_BIN / "soa"), "api", "--host", "127.0.0.1", "--port", str(self.port),
            "--workers", str(self.api_workers),
        ]  # fmt: skip

    def start_api(self) -> None:
        env = self.environment() | self.api_env
        self.api = ManagedProcess(self.api_command(), self.workdir / "api.log", env, inherit_env=False)
        self.api.start()
        wait_until(lambda: http_ok(f"{self.base_url}/readyz"), API_START_TIMEOUT, "the api", self.api.exit_problem)

    def start_worker(self) -> None:
        command = [str(VENV_BIN / "soa"), "worker", "--concurrency", str(self.worker_concurrency)]
        self.worker = ManagedProcess(command, self.workdir / "worker.log", self.environment(), inherit_env=False)
        self.worker.start()
        time.sleep(WORKER_SETTLE_SECONDS)
        if problem := self.worker.exit_problem():
            self.notes.append("the worker did not start; measured without it: " + problem.splitlines()[0])

    def roots(self) -> dict[str, list[int | None]]:
        return {
            "api": [self.api.pid if self.api else None],
            "worker": [self.worker.pid if self.worker and self.worker.running else None],
            "postgres": [self.postgres._process.pid if self.postgres and self.postgres._process else None],
            "redis": [self.redis._process.pid if self.redis and self.redis._process else None],
        }

    def api_worker_pids(self) -> list[int]:
        """The processes that serve requests: the api itself, or uvicorn's worker children."""
        if self.api is None or self.api.pid is None:
            return []
        if self.api_workers == 1:
            return [self.api.pid]
        table = process_table()
        children = [pid for pid, (ppid, _) in table.items() if ppid == self.api.pid]
        workers = [pid for pid in children if b"resource_tracker" not in _cmdline(pid)]  # multiprocessing's helper
        return workers or [self.api.pid]

    def problems(self) -> list[str]:
        """Exits and logged errors of the api and worker (the most frequent lines)."""
        found = []
        for name, proc in (("api", self.api), ("worker", self.worker)):
            if proc is None:
                continue
            if proc.proc is not None and not proc.running:
                found.append(f"{name} exited with {proc.returncode}")
            errors: collections.Counter[str] = collections.Counter()
            for line in proc.log_text().splitlines():
                if re.search(r"\b(ERROR|CRITICAL|Traceback)\b", line):
                    errors[re.sub(r"\d+", "N", line.strip())[:160]] += 1
            found += [f"{name} log: {count}x {text}" for text, count in errors.most_common(3)]
        return found

    def close(self) -> None:
        for proc in (self.worker, self.api):
            if proc is not None:
                with contextlib.suppress(Exception):
                    proc.terminate(10)
        for server in (self.redis, self.postgres):
            if server is not None:
                with contextlib.suppress(Exception):
                    server.close()


def summarize_profile(path: Path, top: int = 12) -> dict[str, list[tuple[float, str]]]:
    """Where the CPU samples of py-spy's collapsed stacks went (idle samples dropped): by library layer
    (each sample to the innermost layer on its stack: self time), by the deepest soa_platform frame,
    and by leaf function."""
    if not path.exists():
        return {}
    ours: collections.Counter[str] = collections.Counter()
    leaf: collections.Counter[str] = collections.Counter()
    layers: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        frames = [name for name in map(_frame_name, stack.split(";")) if name]
        if not frames or frames[-1] in IDLE_LEAVES:
            continue  # uvloop's poll and idle threads are sampled too: not CPU
        count = int(count_text)
        total += count
        project = [name for name in frames if name.startswith("soa_platform/") and "/cli.py" not in name]
        ours[project[-1] if project else "(no soa_platform frame: uvicorn, websockets, asyncio...)"] += count
        leaf[frames[-1]] += count
        layers[_layer(frames)] += count
    if not total:
        return {}
    return {
        "layer (self time)": [(100 * n / total, name) for name, n in layers.most_common()],
        "deepest soa_platform frame": [(100 * n / total, name) for name, n in ours.most_common(top)],
        "leaf (self)": [(100 * n / total, name) for name, n in leaf.most_common(top)],
    }


IDLE_LEAVES = {
    "asyncio/runners.py:Runner.run",  # uvloop's run_forever: its epoll wait is in C
    "threading.py:Condition.wait",
    "threading.py:Event.wait",
    "queue.py:Queue.get",
    "selectors.py:EpollSelector.select",
}
LAYERS = (  # the first match, from the innermost frame out, takes the sample
    ("opentelemetry (spans, ASGI middleware, SQL hooks)", ("opentelemetry/",)),
    ("asyncpg", ("asyncpg/",)),
    ("sqlalchemy", ("sqlalchemy/",)),
    ("pydantic", ("pydantic/", "pydantic_core/")),
    ("jwt", ("jwt/",)),
    ("redis client", ("redis/",)),
    ("kombu/celery (task send)", ("kombu/", "celery/")),
    ("websockets", ("websockets/", "uvicorn/protocols/websockets/")),
    ("uvicorn http", ("uvicorn/",)),
    ("anyio threadpool (sync dependencies)", ("anyio/",)),
    ("fastapi", ("fastapi/",)),
    ("starlette", ("starlette/",)),
    ("soa_platform", ("soa_platform/",)),
    ("aiohttp", ("aiohttp/", "aiohappyeyeballs/", "yarl/", "multidict/")),
    ("load generator", ("messaging_",)),
)


def _layer(frames: list[str]) -> str:
    for frame in reversed(frames):
        for name, markers in LAYERS:
            if frame.startswith(markers):
                return name
    return "other (asyncio, stdlib)"


def _frame_name(frame: str) -> str:
    """'page (soa_platform/messaging/repository.py:123)' -> 'soa_platform/messaging/repository.py:page'."""
    match = re.match(r"(.+?) \((.+?)(?::\d+)?\)$", frame.strip())
    if not match:
        return frame.strip()
    function, filename = match.groups()
    if function.startswith(("process ", "thread ")):
        return ""
    for marker in ("site-packages/", "/platform/", "/bench/", "lib/python3.11/"):
        if marker in filename:
            filename = filename.split(marker, 1)[1]
            break
    return f"{filename}:{function}"
