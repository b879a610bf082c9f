"""Run the real operator (`soa operator run`) as a subprocess against a Kubernetes API.

A subprocess, not an in-process task, so tests can kill -9 it mid-provision exactly as a node
failure would, and so kopf's own process-level setup (signals, login) runs as in production.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[2]

# All waits of the operator scenarios in one place (seconds).
OPERATOR_START = 20.0
CONVERGE = 30.0
RESYNC_SECONDS = 1.0
RETRY_SECONDS = 0.2


class OperatorProcess:
    """One `soa operator run` child with fast resync for tests; logs go to a file for failures."""

    def __init__(self, kubeconfig: Path, log_path: Path, extra_env: dict[str, str] | None = None) -> None:
        self.kubeconfig = kubeconfig
        self.log_path = log_path
        self.extra_env = extra_env or {}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> OperatorProcess:
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "SOA_OPERATOR_METRICS_PORT": "0",
            "SOA_OPERATOR_LOG_FORMAT": "json",
            "SOA_OPERATOR_RESYNC_SECONDS": str(RESYNC_SECONDS),
            "SOA_OPERATOR_RETRY_SECONDS": str(RETRY_SECONDS),
            "SOA_OPERATOR_DELETION_RECHECK_SECONDS": str(RETRY_SECONDS),
            **self.extra_env,
        }
        log = self.log_path.open("ab")
        cmd = [sys.executable, "-m", "soa_operator.cli.main", "operator", "run"]
        self.proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        return self

    def kill(self) -> None:
        """SIGKILL: no cleanup, no graceful shutdown — like a crashed node."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def assert_alive(self) -> None:
        assert self.proc is not None
        assert self.proc.poll() is None, "operator exited:\n" + self.log_text()[-4000:]


def wait_until(predicate: Callable[[], T], timeout: float = CONVERGE, interval: float = 0.05, what: str = "") -> T:
    """Poll ``predicate`` until it returns something truthy; fail with ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last  # type: ignore[no-any-return]
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}; last: {last!r}")
