"""Real Janus (videoroom only) and coturn for tests, on a veth interface that carries 127.0.0.2.

Janus never gathers ICE candidates on loopback interfaces and libnice binds one interface, so media
goes over a veth pair (`jv0`/`jv1`) with 127.0.0.2 on `jv0`: Janus announces 127.0.0.2 (`interface`,
`ice_enforce_list`), aiortc peers reach it there, and coturn relays on the same address. The HTTP,
WebSocket and admin transports listen on 127.0.0.1. Creating the veth needs root.

Both servers can be kill()ed (SIGKILL) and start()ed again on the same ports, like a crashed pod.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import subprocess
import tempfile
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from soa_platform.meetings.janus_config import JanusConfig, write_janus_config
from tests.support.processes import ManagedProcess, free_port, port_open, wait_until

MEDIA_INTERFACE = "jv0"
MEDIA_PEER = "jv1"
MEDIA_ADDRESS = "127.0.0.2"


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True)


def _interface_exists(name: str) -> bool:
    return _ip("link", "show", name, check=False).returncode == 0


@contextlib.contextmanager
def media_interface() -> Iterator[str]:
    """The veth pair with 127.0.0.2 (created if missing; removed at the end only if created here)."""
    created = False
    if not _interface_exists(MEDIA_INTERFACE):
        result = _ip("link", "add", MEDIA_INTERFACE, "type", "veth", "peer", "name", MEDIA_PEER, check=False)
        if result.returncode != 0 and not _interface_exists(MEDIA_INTERFACE):  # a parallel session may have won
            raise RuntimeError(f"cannot create the veth pair (root needed): {result.stderr.strip()}")
        created = result.returncode == 0
    addresses = _ip("-o", "addr", "show", "dev", MEDIA_INTERFACE).stdout
    if f"inet {MEDIA_ADDRESS}/" not in addresses:
        _ip("addr", "add", f"{MEDIA_ADDRESS}/32", "dev", MEDIA_INTERFACE)
    _ip("link", "set", MEDIA_INTERFACE, "up")
    _ip("link", "set", MEDIA_PEER, "up")
    try:
        yield MEDIA_ADDRESS
    finally:
        if created:
            _ip("link", "del", MEDIA_INTERFACE, check=False)


@dataclass
class JanusServer:
    """A private Janus configured as the platform runs it (`soa_platform.meetings.janus_config`), announcing
    127.0.0.2 on the veth."""

    base_dir: Path
    http_port: int = field(default_factory=free_port)
    ws_port: int = field(default_factory=free_port)
    admin_port: int = field(default_factory=free_port)
    api_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    admin_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    media_address: str = MEDIA_ADDRESS
    _process: ManagedProcess | None = field(default=None, init=False, repr=False)

    @classmethod
    def launch(cls, base_dir: Path | None = None) -> JanusServer:
        if shutil.which("janus") is None:
            raise RuntimeError("janus is not installed: apt-get install -y janus")
        server = cls(Path(base_dir or tempfile.mkdtemp(prefix="soa-janus-")))
        try:
            server.write_config()
            server.start()
        except BaseException:
            server.close()
            raise
        return server

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/janus"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.ws_port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}/admin"

    @property
    def config_dir(self) -> Path:
        return self.base_dir / "conf"

    @property
    def log_path(self) -> Path:
        return self.base_dir / "janus.log"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.running

    @property
    def config(self) -> JanusConfig:
        return JanusConfig(
            self.config_dir, self.http_port, self.ws_port, self.admin_port, self.api_secret, self.admin_secret,
            interface=self.media_address, ice_enforce_list=MEDIA_INTERFACE,
        )  # fmt: skip

    def write_config(self) -> None:
        write_janus_config(self.config)

    def start(self, timeout: float = 15.0) -> None:
        """Start (again) on the same ports; return once the API and the admin API answer."""
        if self.running:
            return
        self._process = ManagedProcess(self.config.command(), self.log_path).start()
        wait_until(self._ready, timeout, "janus", self._process.exit_problem)

    def _ready(self) -> bool:
        if not (port_open("127.0.0.1", self.ws_port) and port_open("127.0.0.1", self.admin_port)):
            return False
        try:
            with urllib.request.urlopen(f"{self.url}/info", timeout=1) as response:  # noqa: S310 (loopback)
                return bool(json.loads(response.read()).get("janus") == "server_info")
        except (OSError, ValueError):
            return False

    def kill(self) -> None:
        """SIGKILL Janus: every session, handle and room is gone."""
        if self._process is not None:
            self._process.kill()

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate(5)

    def log_text(self) -> str:
        return self._process.log_text() if self._process else ""

    def close(self) -> None:
        try:
            self.stop()
        finally:
            self.kill()
            shutil.rmtree(self.base_dir, ignore_errors=True)


@dataclass
class CoturnServer:
    """A private coturn on 127.0.0.2 with TURN REST credentials (`use-auth-secret`), UDP and TCP, no TLS."""

    base_dir: Path
    host: str = MEDIA_ADDRESS
    port: int = field(default_factory=lambda: free_port(MEDIA_ADDRESS))
    shared_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    realm: str = "soa.test"
    _process: ManagedProcess | None = field(default=None, init=False, repr=False)

    @classmethod
    def launch(cls, base_dir: Path | None = None) -> CoturnServer:
        if shutil.which("turnserver") is None:
            raise RuntimeError("coturn is not installed: apt-get install -y coturn")
        server = cls(Path(base_dir or tempfile.mkdtemp(prefix="soa-coturn-")))
        try:
            server.start()
        except BaseException:
            server.close()
            raise
        return server

    @property
    def uri(self) -> str:
        return f"turn:{self.host}:{self.port}?transport=udp"

    @property
    def log_path(self) -> Path:
        return self.base_dir / "turnserver.log"

    def start(self, timeout: float = 10.0) -> None:
        command = [
            "turnserver", "-n", f"--listening-ip={self.host}", f"--relay-ip={self.host}",
            f"--listening-port={self.port}", "--min-port=40001", "--max-port=50000",
            "--use-auth-secret", f"--static-auth-secret={self.shared_secret}", f"--realm={self.realm}",
            "--fingerprint", "--allow-loopback-peers", "--no-cli", "--no-tls", "--no-dtls",
            "--no-multicast-peers", "--log-file=stdout", "--simple-log",
            f"--pidfile={self.base_dir / 'turnserver.pid'}", f"--userdb={self.base_dir / 'turndb'}",
        ]  # fmt: skip
        self._process = ManagedProcess(command, self.log_path).start()
        self._process.wait_for_port(self.host, self.port, timeout)

    def log_text(self) -> str:
        return self._process.log_text() if self._process else ""

    def close(self) -> None:
        try:
            if self._process is not None:
                self._process.terminate(5)
        finally:
            shutil.rmtree(self.base_dir, ignore_errors=True)
