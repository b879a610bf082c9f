"""`soa up`: the embedded default a newcomer runs — one tenant, no external service."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import psutil
import pytest

from tests.support.processes import free_port

ROOT = Path(__file__).resolve().parents[2]
SOA = str(ROOT / ".venv" / "bin" / "soa")


class Webhook:
    """Receives mention notifications from the embedded worker."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        received = self.keys

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", 0)))
                received.append(self.headers.get("Idempotency-Key", ""))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.server.shutdown()


class Up:
    def __init__(self, data_dir: Path, port: int, env: dict[str, str]) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [SOA, "up", "--port", str(port), "--data-dir", str(data_dir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "COLUMNS": "400", **env},
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def wait_until_up(self, timeout: float = 90) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = "".join(self.lines)
            if "SOA is up" in text and "stop with Ctrl-C" in text:
                return text
            assert self.process.poll() is None, text
            time.sleep(0.1)
        raise AssertionError("soa up did not come up:\n" + "".join(self.lines))

    def stop(self) -> int:
        children = psutil.Process(self.process.pid).children(recursive=True)
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=30)
        _, alive = psutil.wait_procs(children, timeout=5)
        assert alive == [], f"children left running: {alive}"
        return code


def share_a_file(client: httpx.Client, auth: dict[str, str], content: bytes) -> int:
    """Announce, PUT to the signed URL, complete, wait for the worker's verdict: the file's id."""
    announced = client.post(
        "/v1/files", json={"filename": "minutes.txt", "content_type": "text/plain", "size": len(content)}, headers=auth
    )
    assert announced.status_code == 201, announced.text
    upload = announced.json()["upload"]
    assert upload["kind"] == "single"
    put = httpx.put(upload["request"]["url"], content=content, headers=upload["request"]["headers"], timeout=10)
    assert put.status_code == 200, put.text
    file_id = int(announced.json()["id"])
    assert client.post(f"/v1/files/{file_id}/complete", headers=auth).json()["status"] == "pending"
    deadline = time.monotonic() + 30  # the real worker verifies it
    while (status := client.get(f"/v1/files/{file_id}", headers=auth).json()["status"]) == "pending":
        assert time.monotonic() < deadline, "the worker did not verify the file"
        time.sleep(0.2)
    assert status == "available"
    return file_id


def download(client: httpx.Client, auth: dict[str, str], file_id: int) -> bytes:
    link = client.get(f"/v1/files/{file_id}/download", headers=auth).json()
    got = httpx.get(link["url"], headers=link["headers"], timeout=10)
    assert got.status_code == 200, got.text
    return got.content


def test_soa_up_serves_a_tenant_to_log_into_chat_and_share_files_on_and_stops_cleanly(
    tmp_path: Path, webhook: Webhook
) -> None:
    data_dir, port = tmp_path / "data", free_port()
    up = Up(data_dir, port, {"SOA_NOTIFICATION_WEBHOOK_URL": webhook.url})
    try:
        banner = up.wait_until_up()
        assert f"files: stored in {(data_dir / 'files').resolve()}" in banner
        match = re.search(r"first admin: (\S+)\s+password: (\S+)", banner)
        assert match, banner
        email, password = match.groups()
        with httpx.Client(base_url=up.url, timeout=10) as client:
            assert client.get("/healthz").json() == {"status": "ok"}
            spec = client.get("/openapi.json").json()
            assert "/v1/conversations/{conversation_id}/messages" in spec["paths"]
            assert client.get("/v1/conversations").status_code == 401
            token = client.post("/v1/auth/login", json={"email": email, "password": password}).json()["access_token"]
            auth = {"Authorization": f"Bearer {token}"}
            colleague = client.post(
                "/v1/admin/users",
                json={"email": "colleague@moitt.gov.pk", "display_name": "Colleague", "password": "a long password"},
                headers=auth,
            ).json()
            channel = client.post(
                "/v1/conversations",
                json={"kind": "public", "name": "general", "member_ids": [colleague["id"]]},
                headers=auth,
            ).json()
            body = {"body": f"welcome <@{colleague['id']}>", "idempotency_key": "first"}
            sent = client.post(f"/v1/conversations/{channel['id']}/messages", json=body, headers=auth)
            assert sent.status_code == 201
            found = client.get("/v1/search", params={"q": "welcome"}, headers=auth).json()["items"]
            assert [m["id"] for m in found] == [sent.json()["id"]]
            content = b"minutes of the first meeting\n" * 100
            file_id = share_a_file(client, auth, content)
            assert download(client, auth, file_id) == content
        deadline = time.monotonic() + 30  # the real worker on the embedded broker delivers the mention
        while not webhook.keys and time.monotonic() < deadline:
            time.sleep(0.2)
        assert webhook.keys == [f"mention:{sent.json()['id']}:{colleague['id']}"]
    finally:
        code = up.stop()
    assert code == 0

    again = Up(data_dir, free_port(), {})
    try:
        banner = again.wait_until_up()
        assert "password:" not in banner.split("SOA is up")[1]  # the first admin is created once
        with httpx.Client(base_url=again.url, timeout=10) as client:
            token = client.post("/v1/auth/login", json={"email": email, "password": password}).json()["access_token"]
            page = client.get(
                f"/v1/conversations/{channel['id']}/messages", headers={"Authorization": f"Bearer {token}"}
            )
            assert [m["body"] for m in page.json()["items"]] == [f"welcome <@{colleague['id']}>"]
            assert download(client, {"Authorization": f"Bearer {token}"}, file_id) == content  # kept on disk
    finally:
        assert again.stop() == 0
