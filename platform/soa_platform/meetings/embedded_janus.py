"""Janus for `soa up`: configured in the data dir with generated secrets, when the `janus` binary is present."""

from __future__ import annotations

import secrets
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from soa_platform.meetings.janus_config import JanusConfig, janus_binary, write_janus_config

ABSENT_MESSAGE = (
    "meetings are off: no `janus` binary found (install Debian's `janus` package, or set SOA_JANUS_URL to a Janus)"
)


@dataclass(frozen=True)
class EmbeddedJanus:
    config: JanusConfig
    public_host: str

    @property
    def env(self) -> dict[str, str]:
        """What the api and worker need to reach this Janus."""
        return {
            "SOA_MEETINGS_ENABLED": "true",
            "SOA_JANUS_URL": self.config.http_url(),
            "SOA_JANUS_ADMIN_URL": self.config.admin_url,
            "SOA_JANUS_PUBLIC_URL": self.config.ws_url(self.public_host),
            "SOA_JANUS_API_SECRET": self.config.api_secret,
            "SOA_JANUS_ADMIN_SECRET": self.config.admin_secret,
        }

    def start(self, log_path: Path) -> subprocess.Popen[bytes]:
        with log_path.open("ab") as log:
            return subprocess.Popen(
                self.config.command(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )


def embedded_janus(data_dir: Path, bind: str) -> EmbeddedJanus | None:
    """Write the config for this run (fresh ports, secrets kept in the data dir); None without Janus.
    Its transports listen where the api does (``bind``); the admin API on loopback only."""
    if janus_binary() is None:
        return None
    public_host = "127.0.0.1" if bind in ("0.0.0.0", "::") else bind  # noqa: S104 - as the api's public URL
    secrets_dir = data_dir / "secrets"
    secrets_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    config = JanusConfig(
        data_dir / "janus", _free_port(bind), _free_port(bind), _free_port("127.0.0.1"),
        _kept_secret(secrets_dir / "janus-api-secret"), _kept_secret(secrets_dir / "janus-admin-secret"), bind=bind,
    )  # fmt: skip
    write_janus_config(config)
    return EmbeddedJanus(config, public_host)


def _kept_secret(path: Path) -> str:
    if not path.exists():
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
