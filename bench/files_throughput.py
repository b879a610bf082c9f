"""Files throughput benchmark: the platform's presigned flow against raw S3 requests to the same server.

Everything runs on this machine: PostgreSQL and Redis (tests/support/servers.py), the JuiceFS S3 gateway
(tests/support/s3_servers.py: MinIO's gateway code, checks signatures; MinIO itself is not packaged here),
`soa migrate` with the store's root credential (as the chart's migration Job: it also runs `soa storage init`,
which creates the bucket and the app's own key and policy), then `soa api` and `soa worker` as subprocesses
with the app's key. The client is this process: one httpx.AsyncClient for every request of both flows.

Two workloads, each measured --runs times alternating which flow goes first (the same bytes each time):
- one 100 MB file: the platform announces a multipart upload (16 MiB parts) and the client PUTs the parts to
  the presigned URLs --parallel at a time, as a browser would; the raw flow makes the same multipart upload
  with header-signed S3 requests (CreateMultipartUpload, UploadPart, CompleteMultipartUpload);
- ten 10 MB files, --parallel files at a time: one presigned PUT each, against one signed PUT each. The
  platform flow is the one a client uses for a drop of several files: one POST /v1/files/batch for all, the
  PUTs, one POST /v1/files/complete for all; downloaded as a client opens a message's attachments: one GET
  /v1/files/downloads for their links, then the GETs. The same files also go one announce, one complete and
  one download link per file (flow "platform, per file", shown beside it, not judged; --no-per-file skips it).
  Raw keys get one new prefix per object, as the platform's files/<id>/<token> do: on a store backed by a
  filesystem (JuiceFS, MinIO) each prefix is a directory to create.

Timed end to end per direction. Platform upload of one file: POST /v1/files -> PUT(s) -> POST
/v1/files/{id}/complete (several files: the batch requests above).
The worker's verification (reading the object back: size, SHA-256, type) is timed separately, from the last
complete to every file `available`, and is not part of the upload figure. Platform download: GET
/v1/files/{id}/download -> GET of the presigned URL. Raw: the S3 requests alone. Throughput is the median over
the runs; the ratio is platform / raw (target >= 0.9, DESIGN.md §7). Each step's time per file is reported too.

Kept fair: every object has the same history before its timed download. The platform's verifier reads each
upload with the minio SDK; the raw flow reads each of its objects the same way, untimed; then both flows read
each object once more with this client, untimed. (How an object was read before changes the next GET's speed
on the JuiceFS gateway by up to ~30 %: with only the client's read-back on the raw side, the platform's 100 MB
GET was 5-15 % slower than raw; with the SDK read added on the raw side only, raw became as slow; with an extra
client read on the platform side only, the platform was 10 % faster.) The worker is paused (SIGSTOP) during
the timed uploads so its verification does not take this machine's cores from the S3 server (in production it
runs elsewhere); --verify-during-upload measures without.

"The api moved no file bytes": the api process's rchar + wchar (/proc/<pid>/io, the bytes passed through
read/write system calls: uvicorn on uvloop reads and writes its client sockets that way, so every byte a client
sends to or receives from the api is counted, and disk I/O too) before and after each platform run, per file.
A calibration first sends the api one 1 MiB request body to show the counter sees request bytes.

Usage: .venv/bin/python bench/files_throughput.py [--quick] [--runs 7] [--parallel 4] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make `tests.support` importable
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import psutil  # noqa: E402
from minio import Minio  # noqa: E402
from minio.credentials import Credentials  # noqa: E402
from minio.signer import sign_v4_s3  # noqa: E402
from minio.time import to_amz_date, utcnow  # noqa: E402
from tests.support.s3_servers import JuiceFSGateway  # noqa: E402

from bench_report import fmt, log, table, workdir  # noqa: E402
from messaging_load import OTHERS_BUSY_PCT, code_state  # noqa: E402
from messaging_procs import VENV_BIN, CpuMeter, Stack  # noqa: E402

T = TypeVar("T")

MB = 1_000_000
MIB = 1024 * 1024
TARGET_RATIO = 0.9  # DESIGN.md §7
PROBE_FILES = 10  # tiny files sent one at a time to time each api call alone
API_BYTES_LIMIT = 0.1  # the api's read+write bytes per file: an api relaying them would show >= 100 % of a file
BUCKET = "soa-bench-files"
APP_ACCESS_KEY = "soa-bench-app"
APP_SECRET_KEY = "soa-bench-app-secret-" + "s" * 20  # loopback only
CONTENT_TYPE = "application/octet-stream"
PART_MIB = 16  # the platform's default multipart part size; the raw flow uses the same
BATCH = 10  # files per POST /v1/files/batch and POST /v1/files/complete (the api's limit)
S3_CPU = "s3"  # the gateway's CPU group
PER_FILE = "platform, per file"  # the several-files workload with one announce and one complete per file


# ---- the stack -----------------------------------------------------------------------------------------


@dataclass
class FilesStack(Stack):
    """The messaging benchmark's stack (PostgreSQL, Redis, api, worker) plus the JuiceFS S3 gateway."""

    gateway: JuiceFSGateway | None = None

    def settings_values(self) -> dict[str, Any]:
        assert self.gateway is not None
        return super().settings_values() | {
            "storage_driver": "s3",
            "s3_endpoint": self.gateway.endpoint.endpoint,
            "s3_bucket": BUCKET,
            "s3_access_key": APP_ACCESS_KEY,
            "s3_secret_key": APP_SECRET_KEY,
            "storage_multipart_part_mib": PART_MIB,
        }

    def start_stores(self) -> None:
        from tests.support.servers import PostgresServer, RedisServer

        self.postgres = PostgresServer.launch(self.workdir / "pg")
        self.redis = RedisServer.launch(self.workdir / "redis", appendonly=False)
        (self.workdir / "s3").mkdir(exist_ok=True)
        self.gateway = JuiceFSGateway.launch(self.workdir / "s3")

    def migrate_with_storage(self) -> str:
        """`soa migrate` with the root credential, as the chart's migration Job: schema, bucket, app key."""
        assert self.gateway is not None
        env = self.environment() | {
            "SOA_S3_ROOT_USER": self.gateway.root_user,
            "SOA_S3_ROOT_PASSWORD": self.gateway.root_password,
        }
        done = subprocess.run([str(VENV_BIN / "soa"), "migrate"], env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"soa migrate failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return done.stderr

    def create_user(self, email: str, password: str) -> None:
        command = [str(VENV_BIN / "soa"), "admin", "create", "--email", email, "--password", password]
        done = subprocess.run(command, env=self.environment(), capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"soa admin create failed ({done.returncode}):\n{done.stderr}")

    def roots(self) -> dict[str, list[int | None]]:
        process = self.gateway._process if self.gateway else None
        return super().roots() | {S3_CPU: [process.pid if process else None]}

    def close(self) -> None:
        super().close()
        if self.gateway is not None:
            with contextlib.suppress(Exception):
                self.gateway.close()


def api_bytes(pid: int | None) -> int:
    """rchar + wchar of the api process and its children (the bytes through read/write system calls)."""
    if pid is None:
        return 0
    total = 0
    with contextlib.suppress(psutil.NoSuchProcess):
        root = psutil.Process(pid)
        for process in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.NoSuchProcess):
                counters = process.io_counters()
                total += counters.read_chars + counters.write_chars  # type: ignore[attr-defined]
    return total


# ---- the two flows -------------------------------------------------------------------------------------


async def bounded(limit: int, jobs: list[Callable[[], Awaitable[T]]]) -> list[T]:
    """Run the jobs `limit` at a time (a browser's concurrent transfers), results in order."""
    lanes = asyncio.Semaphore(limit)

    async def one(job: Callable[[], Awaitable[T]]) -> T:
        async with lanes:
            return await job()

    return list(await asyncio.gather(*(one(job) for job in jobs)))


def split(data: bytes, part_size: int) -> list[bytes]:
    return [data[offset : offset + part_size] for offset in range(0, len(data), part_size)]


async def put(http: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str]) -> str:
    response = await http.put(url, content=body, headers=headers)
    if response.status_code != 200:
        raise RuntimeError(f"PUT answered {response.status_code}: {response.text[:300]}")
    return response.headers["etag"]


async def fetch(http: httpx.AsyncClient, url: str, headers: dict[str, str]) -> list[bytes]:
    """The body as received (chunks kept, not joined: the comparison with the sent bytes is untimed)."""
    chunks: list[bytes] = []
    async with http.stream("GET", url, headers=headers) as response:
        if response.status_code != 200:
            raise RuntimeError(f"GET answered {response.status_code}: {(await response.aread())[:300]!r}")
        async for chunk in response.aiter_raw():
            chunks.append(chunk)
    return chunks


class Steps:
    """Seconds each step of a flow took (per file: a multipart upload's parts together are one `PUT bytes`)."""

    def __init__(self) -> None:
        self.latencies: dict[str, list[float]] = {}

    async def timed(self, kind: str, step: Awaitable[T]) -> T:
        started = time.perf_counter()
        result = await step
        self.latencies.setdefault(kind, []).append(time.perf_counter() - started)
        return result

    def take_latencies(self) -> dict[str, list[float]]:
        taken, self.latencies = self.latencies, {}
        return taken


class Platform(Steps):
    """One user of the api: announce, PUT to the presigned URL(s), complete, download link, GET."""

    def __init__(self, http: httpx.AsyncClient, base_url: str, token: str, parallel: int, part_size: int) -> None:
        super().__init__()
        self.http, self.base_url, self.parallel, self.part_size = http, base_url, parallel, part_size
        self.auth = {"Authorization": f"Bearer {token}"}

    async def api(self, kind: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        request = self.http.request(method, f"{self.base_url}{path}", headers=self.auth, **kwargs)
        response = await self.timed(kind, request)
        if response.status_code >= 400:
            raise RuntimeError(f"{method} {path} answered {response.status_code}: {response.text[:300]}")
        return response

    async def upload(self, name: str, data: bytes, parts: list[bytes]) -> int:
        """One file, one request each: announce, send, complete."""
        announced = (
            await self.api(
                "announce",
                "POST",
                "/v1/files",
                json={"filename": name, "content_type": CONTENT_TYPE, "size": len(data)},
            )
        ).json()
        item = await self.send(announced["upload"], data, parts)
        await self.api(
            "complete",
            "POST",
            f"/v1/files/{announced['id']}/complete",
            json={"parts": item["parts"]} if "parts" in item else None,
        )
        return int(announced["id"])

    async def upload_batch(self, names: list[str], files: list[bytes], parts: list[list[bytes]]) -> list[int]:
        """Several files as a client sends a drop of files: one announcement for all (up to 10 per request), the
        bytes --parallel files at a time, one completion for all.

        Completing the files as they finish instead (one request in flight at a time, for every file finished
        since the last) was measured and is slower here: 5-8 completion requests per batch, whose HEADs and api
        CPU compete with the other lanes' PUTs on this 2-core machine (PUT 145-160 ms against 125)."""
        ids: list[int] = []
        for start in range(0, len(files), BATCH):
            chunk = range(start, min(start + BATCH, len(files)))
            entries = [{"filename": names[i], "content_type": CONTENT_TYPE, "size": len(files[i])} for i in chunk]
            announced = (await self.api("announce batch", "POST", "/v1/files/batch", json={"files": entries})).json()
            sends = [
                lambda file=file, i=i: self.send(file["upload"], files[i], parts[i], file["id"])
                for file, i in zip(announced["files"], chunk, strict=True)
            ]
            items = await bounded(self.parallel, sends)
            await self.api("complete batch", "POST", "/v1/files/complete", json={"files": items})
            ids += [int(file["id"]) for file in announced["files"]]
        return ids

    async def send(self, plan: dict[str, Any], data: bytes, parts: list[bytes], file_id: int = 0) -> dict[str, Any]:
        """PUT the bytes where the announcement said; returns the file's completion item."""
        if plan["kind"] == "single":
            await self.timed("PUT bytes", put(self.http, plan["request"]["url"], data, plan["request"]["headers"]))
            return {"id": file_id}
        if plan["part_size"] != self.part_size or len(plan["parts"]) != len(parts):
            raise RuntimeError(f"unexpected multipart plan: {plan['part_size']} bytes x {len(plan['parts'])}")
        sends = [
            lambda part=part, piece=piece: put(self.http, part["url"], piece, part["headers"])
            for part, piece in zip(plan["parts"], parts, strict=True)
        ]
        etags = await self.timed("PUT bytes", bounded(self.parallel, sends))
        numbered = [{"number": p["number"], "etag": e} for p, e in zip(plan["parts"], etags, strict=True)]
        return {"id": file_id, "parts": numbered}

    async def wait_verified(self, file_ids: list[int], within: float = 600.0) -> None:
        deadline = time.monotonic() + within
        pending = list(file_ids)
        while pending:
            statuses = [(await self.api("status", "GET", f"/v1/files/{fid}")).json() for fid in pending]
            if rejected := [s for s in statuses if s["status"] == "rejected"]:
                raise RuntimeError(f"verification rejected a file: {rejected[0]['reject_reason']}")
            pending = [s["id"] for s in statuses if s["status"] == "pending"]
            if pending and time.monotonic() > deadline:
                raise RuntimeError(f"{len(pending)} files still pending after {within:g} s")
            if pending:
                await asyncio.sleep(0.05)

    async def download_batch(self, file_ids: list[int]) -> list[list[bytes]]:
        """Several files as a client opens a message's attachments: their links in one request (up to 10), then
        the GETs --parallel at a time."""
        received: list[list[bytes]] = []
        for start in range(0, len(file_ids), BATCH):
            query = "&".join(f"id={fid}" for fid in file_ids[start : start + BATCH])
            links = (await self.api("download links", "GET", f"/v1/files/downloads?{query}")).json()["downloads"]
            gets = [lambda link=link: self.timed("GET bytes", fetch(self.http, link["url"], link["headers"]))
                    for link in links]  # fmt: skip
            received += await bounded(self.parallel, gets)
        return received

    async def read_back(self, file_ids: list[int]) -> None:
        """Read each file once through a download link, untimed and unrecorded (see measure_platform)."""
        for file_id in file_ids:
            response = await self.http.get(f"{self.base_url}/v1/files/{file_id}/download", headers=self.auth)
            response.raise_for_status()
            link = response.json()
            await fetch(self.http, link["url"], link["headers"])

    async def download(self, file_id: int) -> list[bytes]:
        link = (await self.api("download link", "GET", f"/v1/files/{file_id}/download")).json()
        return await self.timed("GET bytes", fetch(self.http, link["url"], link["headers"]))

    async def delete(self, file_id: int) -> None:
        await self.api("delete", "DELETE", f"/v1/files/{file_id}")


class RawS3(Steps):
    """The same transfers as plain S3 requests, signed in the header (SigV4, UNSIGNED-PAYLOAD as presigned URLs
    are), with the app's key: no platform in the way."""

    def __init__(self, http: httpx.AsyncClient, endpoint: str, region: str, parallel: int) -> None:
        super().__init__()
        self.http, self.endpoint, self.region, self.parallel = http, endpoint, region, parallel
        self.credentials = Credentials(APP_ACCESS_KEY, APP_SECRET_KEY)
        parts = urlsplit(endpoint)
        self.sdk = Minio(parts.netloc, APP_ACCESS_KEY, APP_SECRET_KEY, secure=parts.scheme == "https", region=region)

    def _signed(
        self, method: str, key: str, query: str = "", headers: dict[str, str] | None = None
    ) -> tuple[str, dict]:
        url = f"{self.endpoint}/{BUCKET}/{quote(key)}" + (f"?{query}" if query else "")
        date = utcnow()
        parts = urlsplit(url)
        unsigned = {"Host": parts.netloc, "x-amz-content-sha256": "UNSIGNED-PAYLOAD", "x-amz-date": to_amz_date(date)}
        signed = sign_v4_s3(
            method=method,
            url=parts,
            region=self.region,
            headers=unsigned | (headers or {}),
            credentials=self.credentials,
            content_sha256="UNSIGNED-PAYLOAD",
            date=date,
        )
        return url, dict(signed)

    async def _request(self, method: str, key: str, query: str = "", body: bytes = b"") -> httpx.Response:
        url, headers = self._signed(method, key, query)
        response = await self.http.request(method, url, content=body, headers=headers)
        if response.status_code not in (200, 204) or b"<Error>" in response.content[:200]:
            raise RuntimeError(f"S3 {method} {query or key} answered {response.status_code}: {response.text[:300]}")
        return response

    async def upload(self, key: str, data: bytes, parts: list[bytes]) -> None:
        if len(parts) == 1:
            url, headers = self._signed("PUT", key, headers={"Content-Type": CONTENT_TYPE})
            await self.timed("PUT bytes", put(self.http, url, data, headers))
            return
        created = await self.timed("create multipart", self._request("POST", key, "uploads="))
        found = re.search(rb"<UploadId>([^<]+)</UploadId>", created.content)
        assert found, created.text
        uid = quote(found.group(1).decode(), safe="")

        async def part(number: int, piece: bytes) -> str:
            url, headers = self._signed("PUT", key, f"partNumber={number}&uploadId={uid}")
            return await put(self.http, url, piece, headers)

        sends = [lambda n=n, p=p: part(n, p) for n, p in enumerate(parts, start=1)]
        etags = await self.timed("PUT bytes", bounded(self.parallel, sends))
        listed = "".join(f"<Part><PartNumber>{n}</PartNumber><ETag>{e}</ETag></Part>" for n, e in enumerate(etags, 1))
        body = f"<CompleteMultipartUpload>{listed}</CompleteMultipartUpload>".encode()
        await self.timed("complete multipart", self._request("POST", key, f"uploadId={uid}", body))

    async def read_as_verifier(self, key: str) -> None:
        """Read the object as the platform's verifier reads each upload: the minio SDK, 1 MiB at a time."""

        def read() -> None:
            response = self.sdk.get_object(BUCKET, key)
            try:
                while response.read(1024 * 1024):
                    pass
            finally:
                response.close()
                response.release_conn()

        await asyncio.to_thread(read)

    async def download(self, key: str, *, timed: bool = True) -> list[bytes]:
        url, headers = self._signed("GET", key)
        received = fetch(self.http, url, headers)
        return await (self.timed("GET bytes", received) if timed else received)

    async def delete(self, key: str) -> None:
        await self._request("DELETE", key)


# ---- one measurement -----------------------------------------------------------------------------------


@dataclass
class Workload:
    name: str
    files: list[bytes]
    parts: list[list[bytes]]  # each file cut into the parts it is sent in (one part: a single PUT)

    @property
    def bytes(self) -> int:
        return sum(len(f) for f in self.files)


@dataclass
class Run:
    run: int
    workload: str
    flow: str  # platform | raw
    bytes: int
    files: int
    upload_s: float = 0.0
    verify_s: float | None = None
    download_s: float = 0.0
    api_bytes: int | None = None  # platform: the api's rchar+wchar over upload, verification wait and download
    intact: bool = False
    step_ms: dict[str, list[float]] = field(default_factory=dict)  # each step's latency per file, by kind
    cpu_pct: dict[str, float] = field(default_factory=dict)

    @property
    def upload_mbps(self) -> float:
        return self.bytes / MB / self.upload_s

    @property
    def download_mbps(self) -> float:
        return self.bytes / MB / self.download_s

    @property
    def api_share(self) -> float:
        """The api's bytes per file as a share of a file's size."""
        return (self.api_bytes or 0) / self.bytes


def same(chunks: list[bytes], data: bytes) -> bool:
    return sum(map(len, chunks)) == len(data) and b"".join(chunks) == data


@contextlib.contextmanager
def paused(pid: int | None) -> Iterator[None]:
    """SIGSTOP a process tree for the block (its queued work waits), SIGCONT after; no-op for None."""
    processes = []
    if pid is not None:
        with contextlib.suppress(psutil.NoSuchProcess):
            root = psutil.Process(pid)
            processes = [root, *root.children(recursive=True)]
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.suspend()
    try:
        yield
    finally:
        for process in processes:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.resume()


Cleanup = Callable[[], Awaitable[None]]


async def measure_platform(
    run: Run, load: Workload, client: Platform, parallel: int, api_pid: int | None, hold_worker: int | None
) -> Cleanup:
    """Upload (with the worker `hold_worker` paused, if given), verification, download; returns the cleanup."""
    before = api_bytes(api_pid)
    names = [f"bench-{run.run}-{i}.bin" for i in range(len(load.files))]
    jobs = [
        lambda name=name, data=data, parts=parts: client.upload(name, data, parts)
        for name, data, parts in zip(names, load.files, load.parts, strict=True)
    ]
    with paused(hold_worker):
        started = time.perf_counter()
        if run.flow == PER_FILE or len(load.files) == 1:
            ids = await bounded(parallel, jobs)
        else:
            ids = await client.upload_batch(names, load.files, load.parts)
        completed = time.perf_counter()
    run.upload_s = completed - started
    await client.wait_verified(ids)
    run.verify_s = time.perf_counter() - completed
    # untimed: one read through a download link. With it, and the raw flow's own reads, both flows' objects have
    # the same history before their timed download (see measure_raw)
    await client.read_back(ids)
    started = time.perf_counter()
    if run.flow == PER_FILE or len(ids) == 1:
        received = await bounded(parallel, [lambda fid=fid: client.download(fid) for fid in ids])
    else:
        received = await client.download_batch(ids)
    run.download_s = time.perf_counter() - started
    run.api_bytes = api_bytes(api_pid) - before
    run.intact = all(same(chunks, data) for chunks, data in zip(received, load.files, strict=True))
    run.step_ms = {kind: [1000 * s for s in seconds] for kind, seconds in client.take_latencies().items()}

    async def cleanup() -> None:  # untimed: keeps the volume small
        for fid in ids:
            await client.delete(fid)
        client.take_latencies()

    return cleanup


async def measure_raw(run: Run, load: Workload, raw: RawS3, parallel: int) -> Cleanup:
    """Upload, one untimed read of each object, download; returns the cleanup."""
    # one new prefix per object, as the platform's files/<id>/<token>: on a filesystem-backed store (JuiceFS, MinIO)
    # each prefix is a directory, so both flows create as many
    keys = [
        f"raw/{run.run}-{load.name.replace(' ', '')}-{i}/{secrets.token_urlsafe(24)}" for i in range(len(load.files))
    ]
    started = time.perf_counter()
    await bounded(
        parallel,
        [lambda k=k, d=d, p=p: raw.upload(k, d, p) for k, d, p in zip(keys, load.files, load.parts, strict=True)],
    )
    run.upload_s = time.perf_counter() - started
    for key in keys:  # untimed: the same reads as the platform's objects had before their timed download
        await raw.read_as_verifier(key)
        await raw.download(key, timed=False)
    started = time.perf_counter()
    received = await bounded(parallel, [lambda k=k: raw.download(k) for k in keys])
    run.download_s = time.perf_counter() - started
    run.intact = all(same(chunks, data) for chunks, data in zip(received, load.files, strict=True))
    run.step_ms = {kind: [1000 * s for s in seconds] for kind, seconds in raw.take_latencies().items()}

    async def cleanup() -> None:
        for key in keys:
            await raw.delete(key)

    return cleanup


# ---- the run -------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    runs: list[Run] = field(default_factory=list)
    calibration: tuple[int, int] | None = None  # (body bytes sent, api rchar+wchar delta)
    api_alone_ms: dict[str, float] = field(default_factory=dict)  # median per api call, one at a time
    notes: list[str] = field(default_factory=list)


def workloads(args: argparse.Namespace) -> list[Workload]:
    part_size = PART_MIB * MIB
    pool = os.urandom(max(args.big_mb, args.small_mb * args.small_count) * MB)  # incompressible, as most files are
    big = pool[: args.big_mb * MB]
    small = [pool[i * args.small_mb * MB : (i + 1) * args.small_mb * MB] for i in range(args.small_count)]

    def cut(data: bytes) -> list[bytes]:
        return split(data, part_size) if len(data) > part_size else [data]

    return [
        Workload(f"1 x {args.big_mb} MB", [big], [cut(big)]),
        Workload(f"{args.small_count} x {args.small_mb} MB", small, [cut(d) for d in small]),
    ]


async def api_latency_alone(client: Platform, files: int) -> dict[str, float]:
    """Median latency of each api call of the flow with nothing else running: tiny files, one at a time."""
    data = os.urandom(1000)
    for i in range(files):
        file_id = await client.upload(f"probe-{i}.bin", data, [data])
        await client.wait_verified([file_id])
        await client.download(file_id)
        await client.delete(file_id)
    return {kind: 1000 * statistics.median(seconds) for kind, seconds in client.take_latencies().items()}


async def calibrate(client: Platform, api_pid: int | None) -> tuple[int, int]:
    """One 1 MiB request body to the api (a 422: too long a file name): its read bytes must show it."""
    body = b'{"filename": "' + b"x" * MIB + b'", "content_type": "text/plain", "size": 1}'
    before = api_bytes(api_pid)
    response = await client.http.post(
        f"{client.base_url}/v1/files", content=body, headers=client.auth | {"Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.status_code
    await asyncio.sleep(0.1)
    return len(body), api_bytes(api_pid) - before


async def drive(args: argparse.Namespace, stack: FilesStack, token: str, outcome: Outcome) -> None:
    assert stack.gateway is not None
    limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
    async with httpx.AsyncClient(timeout=300.0, limits=limits, trust_env=False) as http:
        client = Platform(http, stack.base_url, token, args.parallel, PART_MIB * MIB)
        raw = RawS3(http, stack.gateway.endpoint.endpoint, stack.gateway.endpoint.region, args.parallel)
        api_pid = stack.api.pid if stack.api else None
        loads = workloads(args)
        log("warm-up: one small file through each flow (not measured)")
        warm = Workload("warm-up", [loads[1].files[0]], [loads[1].parts[0]])
        await (await measure_platform(Run(-1, warm.name, "platform", warm.bytes, 1), warm, client, 1, api_pid, None))()
        await (await measure_raw(Run(-1, warm.name, "raw", warm.bytes, 1), warm, raw, 1))()
        outcome.api_alone_ms = await api_latency_alone(client, PROBE_FILES)
        alone = ", ".join(f"{kind} {fmt(ms, '.0f')}" for kind, ms in outcome.api_alone_ms.items())
        log(f"steps one at a time ({PROBE_FILES} files of 1 kB), median ms: {alone}")
        outcome.calibration = await calibrate(client, api_pid)
        sent, seen = outcome.calibration
        log(f"calibration: a {sent} B request body raised the api's rchar+wchar by {seen} B")
        meter = CpuMeter(stack.roots())
        hold_worker = None if args.verify_during_upload or stack.worker is None else stack.worker.pid
        for index in range(args.runs):
            for load in loads:
                flows = ["platform", "raw"] + ([PER_FILE] if len(load.files) > 1 and not args.no_per_file else [])
                shift = index % len(flows)
                for flow in flows[shift:] + flows[:shift]:  # each flow goes first in turn
                    run = Run(index, load.name, flow, load.bytes, len(load.files))
                    meter.lap()
                    started = time.perf_counter()
                    if flow != "raw":
                        cleanup = await measure_platform(run, load, client, args.parallel, api_pid, hold_worker)
                    else:
                        cleanup = await measure_raw(run, load, raw, args.parallel)
                    seconds = time.perf_counter() - started
                    run.cpu_pct = {name: 100 * cpu / seconds for name, cpu in meter.lap().items()}
                    await cleanup()
                    outcome.runs.append(run)
                    log(
                        f"run {index} {load.name} {flow}: up {run.upload_mbps:.0f} MB/s, down {run.download_mbps:.0f} "
                        f"MB/s"
                        + (f", verify {run.verify_s:.2f} s" if run.verify_s is not None else "")
                        + f", others CPU {run.cpu_pct.get('others', 0):.0f}%"
                        + ("" if run.intact else " BYTES DIFFER")
                    )


# ---- report --------------------------------------------------------------------------------------------


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def report(outcome: Outcome, args: argparse.Namespace) -> tuple[bool, dict[str, Any]]:
    print(
        f"\nFiles throughput ({os.cpu_count()} CPUs, Python {sys.version.split()[0]}; JuiceFS S3 gateway on a "
        f"file-backed volume; {args.runs} runs per flow, alternating which goes first; {args.parallel} transfers at "
        f"a time; multipart parts of {PART_MIB} MiB; worker "
        + ("verifying during the uploads" if args.verify_during_upload else "paused during the timed uploads")
        + f")\ncode: {args.code}"
    )
    summary = summarize(outcome.runs)
    rows = [
        [s["workload"], s["flow"], s["direction"], fmt(s["platform_mbps"], ".0f"), fmt(s["raw_mbps"], ".0f"),
         fmt(s["ratio"], ".2f"), fmt(s["paired_ratio"], ".2f"),
         ("PASS" if s["passed"] else "FAIL") if s["judged"] else "(shown)"]
        for s in summary
    ]  # fmt: skip
    print(
        f"\nMedian throughput, MB/s (1 MB = 10^6 bytes); ratio = platform median / raw median, target >= "
        f"{TARGET_RATIO}; the median of each run's own platform / raw ratio is shown as a check on noise. "
        f"Several files go as a client sends a drop of files (flow `platform`: POST /v1/files/batch, the PUTs, POST "
        f"/v1/files/complete); `{PER_FILE}` sends the same files with one announce and one complete each:\n"
    )
    header = ["workload", "flow", "direction", "platform MB/s", "raw S3 MB/s", "ratio", "median of run ratios",
              "verdict"]  # fmt: skip
    print(table(rows, header))
    print(
        "\nEvery run (CPU: % of one core over the run's wall time, 200 % = the whole machine; the raw run's window "
        "includes its untimed read-back; verify is not in the upload time):\n"
    )
    print(table([run_row(r) for r in outcome.runs], RUN_HEADER))
    print(
        "\nEach step, median ms per file over all runs (PUT bytes: all of a file's parts, --parallel at a time; a "
        "batch step is one request for the whole batch):\n"
    )
    print(table(step_rows(outcome.runs), ["workload", "step", "platform ms", f"{PER_FILE} ms", "raw S3 ms"]))
    busy = [r for r in outcome.runs if r.cpu_pct.get("others", 0.0) > OTHERS_BUSY_PCT]
    if busy:
        others = median([r.cpu_pct.get("others", 0.0) for r in outcome.runs])
        print(
            f"other processes (not this benchmark's) took more than {OTHERS_BUSY_PCT:g} % of a core during {len(busy)} "
            f"of {len(outcome.runs)} runs (median {fmt(others, '.0f')} %): the figures are not this stack's alone"
        )

    platform_runs = [r for r in outcome.runs if r.flow != "raw"]
    worst = max(platform_runs, key=lambda r: r.api_share, default=None)
    api_ok = worst is not None and worst.api_share < API_BYTES_LIMIT
    sent, seen = outcome.calibration or (0, 0)
    calibrated = outcome.calibration is not None and seen >= sent
    intact = bool(outcome.runs) and all(r.intact for r in outcome.runs)
    print()
    if outcome.calibration:
        print(f"calibration: a {sent} B request body raised the api's rchar+wchar by {seen} B")
    if worst is not None:
        print(
            f"api bytes moved (its rchar+wchar over a platform run: uploads, verification polling, downloads): at most "
            f"{(worst.api_bytes or 0) / worst.files / 1024:.1f} KiB per file of {worst.bytes / worst.files / MB:g} MB "
            f"= {100 * worst.api_share:.4f} % (limit {100 * API_BYTES_LIMIT:g} %)"
        )
    for load in dict.fromkeys(r.workload for r in platform_runs):
        seconds = [r.verify_s or 0.0 for r in platform_runs if r.workload == load and r.flow == "platform"]
        print(f"verification by the worker, {load}: median {statistics.median(seconds):.2f} s after the last complete")
    if outcome.api_alone_ms:
        alone = ", ".join(f"{kind} {ms:.0f}" for kind, ms in outcome.api_alone_ms.items())
        print(f"steps one at a time ({PROBE_FILES} files of 1 kB, nothing else running), median ms: {alone}")
    for note in outcome.notes:
        print(f"note: {note}")
    print()
    checks = [
        (s["passed"], f"{s['workload']} {s['direction']}: platform / raw = {fmt(s['ratio'], '.2f')}")
        for s in summary
        if s["judged"]
    ]
    checks += [
        (api_ok and calibrated, "the api carried no file bytes"),
        (intact, "every download returned the bytes sent"),
    ]
    for passed, text in checks:
        print(f"{'PASS' if passed else 'FAIL'}  {text}")
    return bool(checks) and all(passed for passed, _ in checks), {"summary": summary}


def summarize(runs: list[Run]) -> list[dict[str, Any]]:
    """Per workload, direction and platform flow: median MB/s of the flow and of raw S3, and their ratio. Only the
    `platform` flow is judged; the per-file flow of the several-files workload is shown beside it."""
    summary = []
    for load in dict.fromkeys(r.workload for r in runs):
        flows = [flow for flow in dict.fromkeys(r.flow for r in runs if r.workload == load) if flow != "raw"]
        for flow in sorted(flows, key=lambda f: f != "platform"):
            for direction in ("upload", "download"):
                mbps = {
                    name: median(
                        [getattr(r, f"{direction}_mbps") for r in runs if r.workload == load and r.flow == name]
                    )
                    for name in (flow, "raw")
                }
                platform, raw = mbps[flow], mbps["raw"]
                ratio = platform / raw if platform is not None and raw else None
                by_run = {(r.run, r.flow): getattr(r, f"{direction}_mbps") for r in runs if r.workload == load}
                paired = [
                    by_run[i, flow] / by_run[i, "raw"] for i, name in by_run if name == "raw" and (i, flow) in by_run
                ]
                summary.append(
                    {"workload": load, "flow": flow, "direction": direction, "platform_mbps": platform, "raw_mbps": raw,
                     "ratio": ratio, "paired_ratio": median(paired), "judged": flow == "platform",
                     "passed": ratio is not None and ratio >= TARGET_RATIO}
                )  # fmt: skip
    return summary


STEPS = ("announce", "announce batch", "create multipart", "PUT bytes", "complete", "complete batch",
         "complete multipart", "download link", "download links", "GET bytes", "status")  # fmt: skip
STEP_FLOWS = ("platform", PER_FILE, "raw")


def step_rows(runs: list[Run]) -> list[list[str]]:
    rows = []
    for load in dict.fromkeys(r.workload for r in runs):
        for step in STEPS:
            cells = [
                median([ms for r in runs if r.workload == load and r.flow == flow for ms in r.step_ms.get(step, [])])
                for flow in STEP_FLOWS
            ]
            if any(cell is not None for cell in cells):
                rows.append([load, step, *(fmt(cell, ".0f") for cell in cells)])
    return rows


RUN_HEADER = ["run", "workload", "flow", "upload s", "MB/s", "verify s", "download s", "MB/s", "api KiB/file",
              "api CPU", "s3 CPU", "client CPU", "others CPU", "bytes intact"]  # fmt: skip


def run_row(r: Run) -> list[str]:
    per_file = r.api_bytes / r.files / 1024 if r.api_bytes is not None else None
    cpu = [f"{r.cpu_pct.get(name, 0):.0f}" for name in ("api", S3_CPU, "generator", "others")]
    return [str(r.run), r.workload, r.flow, f"{r.upload_s:.3f}", f"{r.upload_mbps:.0f}", fmt(r.verify_s, ".2f"),
            f"{r.download_s:.3f}", f"{r.download_mbps:.0f}", fmt(per_file, ".1f"), *cpu,
            "yes" if r.intact else "NO"]  # fmt: skip


# ---- setup ---------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: 20 MB and 4 x 2 MB, 2 runs")
    parser.add_argument("--big-mb", type=int, default=100, help="size of the one large file (multipart), MB")
    parser.add_argument("--small-mb", type=int, default=10, help="size of each small file (single PUT), MB")
    parser.add_argument("--small-count", type=int, default=10, help="how many small files")
    parser.add_argument(
        "--runs", type=int, default=15, help="measurements per flow and workload (single runs spread by ~±0.07 here)"
    )
    parser.add_argument("--parallel", type=int, default=4, help="transfers (parts or files) at a time")
    parser.add_argument(
        "--no-per-file",
        action="store_true",
        help=f"skip the `{PER_FILE}` flow (shown beside the judged batch flow for the several-files workload)",
    )
    parser.add_argument(
        "--verify-during-upload",
        action="store_true",
        help="let the worker verify each file while the next ones upload (default: it is paused during the timed "
        "upload and verifies after it, so the upload figure measures the flow, not the verifier sharing this "
        "machine's cores with the S3 server)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--keep-logs", type=Path, default=None, help="keep logs and server dirs in this directory")
    args = parser.parse_args(argv)
    if args.quick:
        for key, value in {"big_mb": 20, "small_mb": 2, "small_count": 4, "runs": 2}.items():
            if parser.get_default(key) == getattr(args, key):
                setattr(args, key, value)
    return args


def login(base_url: str, email: str, password: str) -> str:
    response = httpx.post(f"{base_url}/v1/auth/login", json={"email": email, "password": password}, trust_env=False)
    response.raise_for_status()
    return str(response.json()["access_token"])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.code = code_state()
    outcome = Outcome()
    log(f"python {sys.version.split()[0]}; {os.cpu_count()} CPUs; code {args.code}")
    with workdir(args.keep_logs, "soa-filesbench-") as tmp:
        stack = FilesStack(tmp)
        try:
            started = time.monotonic()
            stack.start_stores()
            for line in stack.migrate_with_storage().splitlines():
                if line.strip():
                    log(f"  migrate: {line.strip()}")
            log(f"PostgreSQL, Redis and the S3 gateway up; schema and bucket in {time.monotonic() - started:.1f} s")
            email, password = "files@bench.gov.pk", "bench password for files"
            stack.create_user(email, password)
            stack.start_api()
            stack.start_worker()
            outcome.notes += stack.notes
            token = login(stack.base_url, email, password)
            log(f"api on {stack.base_url} (pid {stack.api.pid if stack.api else '-'}); measuring")
            asyncio.run(drive(args, stack, token, outcome))
        except KeyboardInterrupt:
            outcome.notes.append("interrupted")
        finally:
            outcome.notes += stack.problems()
            stack.close()
    if code_state() != args.code:
        args.code += f" -- CHANGED DURING THE RUN to {code_state()}"
    ok, figures = report(outcome, args)
    if args.json:
        settings_out = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
        runs = [
            dataclasses.asdict(r) | {"upload_mbps": r.upload_mbps, "download_mbps": r.download_mbps}
            for r in outcome.runs
        ]
        args.json.write_text(
            json.dumps(
                {
                    "settings": settings_out,
                    "runs": runs,
                    "calibration": outcome.calibration,
                    "api_alone_ms": outcome.api_alone_ms,
                    "notes": outcome.notes,
                }
                | figures,
                indent=2,
            )
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
