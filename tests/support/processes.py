"""Generic helpers for tests that run real subprocesses: free ports, readiness waits, `ManagedProcess`.

Every `ManagedProcess` runs in its own process group (so kill() takes its children with it) and, by
default, gets SIGKILL from the kernel if the test process dies first, so nothing outlives pytest.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
_prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved here: the forked child must not dlsym()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    """True if a TCP connection to ``host:port`` succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(
    check: Callable[[], bool], timeout: float, what: str, alive: Callable[[], str | None] | None = None
) -> None:
    """Poll ``check`` (with a short backoff) until true; ``alive`` returns an error text to fail early."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        if check():
            return
        problem = alive() if alive else None
        if problem:
            raise RuntimeError(f"{what}: {problem}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.2)


def http_ok(url: str, timeout: float = 1.0) -> bool:
    """True if a GET on ``url`` answers with any status below 500."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (test-only loopback URLs)
            return int(resp.status) < 500
    except urllib.error.HTTPError as err:
        return err.code < 500
    except (OSError, ValueError):
        return False


def wait_for_port(host: str, port: int, timeout: float = 10.0) -> None:
    """Wait until ``host:port`` accepts TCP connections."""
    wait_until(lambda: port_open(host, port), timeout, f"{host}:{port} to accept connections")


def wait_for_http(url: str, timeout: float = 10.0) -> None:
    """Wait until ``url`` answers a GET with a status below 500."""
    wait_until(lambda: http_ok(url), timeout, f"{url} to answer")


def _die_with_parent() -> None:
    """preexec_fn: ask the kernel to SIGKILL the child when the thread that started it exits."""
    _prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)


def _descendants(root: int) -> list[int]:
    """All live descendants of ``root``, parents before their children (read from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                ppid = int(Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, queue = [], list(children.get(root, []))
    while queue:
        pid = queue.pop(0)
        found.append(pid)
        queue.extend(children.get(pid, []))
    return found


def kill_tree(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL ``proc``, its process group and all its descendants (even those in their own sessions,
    like PostgreSQL backends), and reap them all.

    While killing, this process is a child subreaper, so the descendants orphaned by the leader's death
    become our children and are reaped here instead of lingering as zombies under PID 1.
    """
    _prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    try:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGSTOP)  # no new forks while we list the tree
        tree = _descendants(proc.pid) if proc.poll() is None else []
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        for pid in tree:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        proc.wait(10)
        for pid in tree:  # parents first: by the time one is reaped, its children are ours
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
    finally:
        _prctl(_PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


class ManagedProcess:
    """One subprocess with its output in ``log_path``; stopped by terminate()/kill() or a `with` block."""

    def __init__(
        self,
        command: Sequence[str],
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | str | None = None,
        *,
        inherit_env: bool = True,
        user: str | None = None,
        die_with_parent: bool = True,
    ) -> None:
        self.command = [str(part) for part in command]
        self.log_path = Path(log_path)
        self.env = dict(env or {})
        self.cwd = cwd
        self.inherit_env = inherit_env
        self.user = user
        self.die_with_parent = die_with_parent
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ManagedProcess:
        """Start the command (again, if it has exited); output is appended to the log file."""
        if self.running:
            raise RuntimeError(f"already running: {self.command}")
        env = {**os.environ, **self.env} if self.inherit_env else dict(self.env)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.command,
                env=env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                user=self.user,
                group=self.user,
                extra_groups=[] if self.user else None,
                preexec_fn=_die_with_parent if self.die_with_parent else None,
            )
        return self

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.proc.poll() if self.proc else None

    def exit_problem(self) -> str | None:
        """None while running; otherwise why it stopped and the end of its log."""
        if self.running:
            return None
        return f"{self.command[0]} exited with {self.returncode}; log tail:\n{self.log_text()[-3000:]}"

    def wait_for_port(self, host: str, port: int, timeout: float = 10.0) -> None:
        """Wait until ``host:port`` accepts connections; fail at once if the process exits."""
        wait_until(lambda: port_open(host, port), timeout, f"{host}:{port} ({self.command[0]})", self.exit_problem)

    def wait_for_http(self, url: str, timeout: float = 10.0) -> None:
        """Wait until ``url`` answers below 500; fail at once if the process exits."""
        wait_until(lambda: http_ok(url), timeout, f"{url} ({self.command[0]})", self.exit_problem)

    def terminate(self, timeout: float = 10.0, sig: int = signal.SIGTERM) -> int | None:
        """Send ``sig`` to the process, wait up to ``timeout``, then SIGKILL the whole group."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout)
        self.kill()
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL the process and all its descendants (no cleanup: like a crashed node)."""
        if self.proc is not None:
            kill_tree(self.proc)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> ManagedProcess:
        return self.start() if not self.running else self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.terminate()
