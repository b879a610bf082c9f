"""Janus configuration as this platform runs it: only the videoroom plugin, the HTTP (with admin API) and
WebSocket transports, an API secret for the platform, stored-token auth for clients, and rooms only through
the admin key. Written by `soa up` (embedded default) and by the test fixtures; the tenant chart renders the
same settings for production.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

JANUS_LIB = Path("/usr/lib/x86_64-linux-gnu/janus")
VIDEOROOM = "libjanus_videoroom.so"
TRANSPORTS = ("libjanus_http.so", "libjanus_websockets.so")


@dataclass(frozen=True)
class JanusConfig:
    directory: Path
    http_port: int
    ws_port: int
    admin_port: int
    api_secret: str
    admin_secret: str
    bind: str = "127.0.0.1"  # where the HTTP and WebSocket transports listen (admin API: loopback only)
    interface: str | None = None  # the address announced in ICE candidates
    ice_enforce_list: str | None = None  # gather candidates only on these interfaces
    lib_dir: Path = JANUS_LIB

    @property
    def main_file(self) -> Path:
        return self.directory / "janus.jcfg"

    def command(self) -> list[str]:
        return ["janus", "-C", str(self.main_file), "-F", str(self.directory), "-o"]

    def http_url(self, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.http_port}/janus"

    def ws_url(self, host: str = "127.0.0.1") -> str:
        return f"ws://{host}:{self.ws_port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}/admin"


def janus_binary() -> str | None:
    """The `janus` executable on PATH, if its plugins are where Debian puts them."""
    binary = shutil.which("janus")
    return binary if binary and (JANUS_LIB / "plugins" / VIDEOROOM).exists() else None


def _disabled(folder: Path, keep: tuple[str, ...]) -> str:
    return ",".join(sorted(p.name for p in folder.glob("*.so") if p.name not in keep))


def write_janus_config(config: JanusConfig) -> None:
    """Write janus.jcfg and the transport and videoroom files into ``config.directory``."""
    conf, lib = config.directory, config.lib_dir
    conf.mkdir(parents=True, exist_ok=True)
    general = [
        f'configs_folder = "{conf}"', f'plugins_folder = "{lib / "plugins"}"',
        f'transports_folder = "{lib / "transports"}"', f'events_folder = "{lib / "events"}"',
        f'loggers_folder = "{lib / "loggers"}"', "debug_level = 4", "debug_timestamps = true",
        f'api_secret = "{config.api_secret}"', f'admin_secret = "{config.admin_secret}"',
        "token_auth = true", "session_timeout = 60", 'server_name = "soa-janus"',
    ]  # fmt: skip
    if config.interface:
        general.append(f'interface = "{config.interface}"')
    nat = ["nice_debug = false", "ignore_mdns = true"]
    if config.ice_enforce_list:
        nat.append(f'ice_enforce_list = "{config.ice_enforce_list}"')
    (conf / "janus.jcfg").write_text(
        _section("general", general)
        + _section("media", ['rtp_port_range = "20000-40000"'])
        + _section("nat", nat)
        + _section("plugins", [f'disable = "{_disabled(lib / "plugins", (VIDEOROOM,))}"'])
        + _section("transports", [f'disable = "{_disabled(lib / "transports", TRANSPORTS)}"'])
        + _section("loggers", [f'disable = "{_disabled(lib / "loggers", ())}"'])
        + _section("events", ["broadcast = false", f'disable = "{_disabled(lib / "events", ())}"'])
    )
    (conf / "janus.transport.http.jcfg").write_text(
        _section("general", ['json = "compact"', 'base_path = "/janus"', "http = true", f"port = {config.http_port}",
                             f'ip = "{config.bind}"', "https = false"])
        + _section("admin", ['admin_base_path = "/admin"', "admin_http = true", f"admin_port = {config.admin_port}",
                             'admin_ip = "127.0.0.1"', "admin_https = false"])
    )  # fmt: skip
    (conf / "janus.transport.websockets.jcfg").write_text(
        _section("general", ['json = "compact"', "ws = true", f"ws_port = {config.ws_port}", f'ws_ip = "{config.bind}"',
                             "wss = false"])
        + _section("admin", ["admin_ws = false", "admin_wss = false"])
    )  # fmt: skip
    # rooms only through the platform's controller, which holds the admin key; none configured statically
    (conf / "janus.plugin.videoroom.jcfg").write_text(
        _section("general", [f'admin_key = "{config.admin_secret}"', "lock_rtp_forward = true"])
    )
    for path in conf.glob("*.jcfg"):
        path.chmod(0o600)  # they hold the secrets


def _section(name: str, lines: list[str]) -> str:
    body = "".join(f"    {line}\n" for line in lines)
    return f"{name}: {{\n{body}}}\n"
