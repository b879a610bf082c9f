"""A real clamd (Debian `clamav-daemon`) on a loopback port with a one-signature database of our own:
no network, no freshclam, ready in about half a second."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from tests.support.processes import ManagedProcess, free_port, port_open, wait_until

CLAMD = shutil.which("clamd") or "/usr/sbin/clamd"
MARKER = b"SOA-TEST-VIRUS-7d1f0c"  # what the test signature finds
SIGNATURE = "SOA-Test-Signature"


class ClamdServer:
    def __init__(self, stream_max_bytes: int = 8 * 1024 * 1024) -> None:
        self.base_dir = Path(tempfile.mkdtemp(prefix="soa-clamd-"))
        self.port = free_port()
        self.stream_max_bytes = stream_max_bytes
        self._process: ManagedProcess | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> ClamdServer:
        database = self.base_dir / "db"
        database.mkdir()
        # an extended (.ndb) signature: any file type, any offset, these bytes
        (database / "soa.ndb").write_text(f"{SIGNATURE}:0:*:{MARKER.hex()}\n")
        config = self.base_dir / "clamd.conf"
        config.write_text(
            f"DatabaseDirectory {database}\nTCPSocket {self.port}\nTCPAddr 127.0.0.1\nForeground yes\n"
            f"LogFile {self.base_dir / 'clamd.log'}\nStreamMaxLength {self.stream_max_bytes}\n"
        )
        self._process = ManagedProcess([CLAMD, "-c", str(config)], self.base_dir / "output.log").start()
        wait_until(lambda: port_open("127.0.0.1", self.port), timeout, "clamd", self._process.exit_problem)
        return self

    def close(self) -> None:
        try:
            if self._process is not None:
                self._process.kill()
        finally:
            shutil.rmtree(self.base_dir, ignore_errors=True)
