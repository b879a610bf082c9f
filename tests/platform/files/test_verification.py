"""Verification of completed uploads by a real Celery worker on Redis: the verdict, exactly once even when the
worker is killed mid-way, lost verifications swept up, virus scans by a real clamd, and one trace."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from soa_platform.audit.models import AuditEvent
from soa_platform.db import Database, utcnow
from soa_platform.files.models import File, FileStatus
from soa_platform.files.s3 import S3Storage
from soa_platform.files.storage import Storage
from soa_platform.files.verification import verify_file
from soa_platform.identity.models import User
from soa_platform.migrate import upgrade
from soa_platform.worker import CeleryDispatcher, create_celery
from tests.platform.files.clamd import MARKER, SIGNATURE, ClamdServer
from tests.platform.files.conftest import s3_values
from tests.platform.files.holding_proxy import HoldingProxy
from tests.platform.worker.conftest import WorkerEnv, eventually, worker_environment
from tests.support.otlp import OtlpReceiver, SpanRecord
from tests.support.s3_servers import S3Endpoint

VERIFY = "soa.files.verify"
DATA = b"Minutes of the meeting\n" + b"agreed; " * 20_000 + b"\n"  # ~160 KB: several reads


@pytest.fixture
def files_worker(tmp_path: Path, postgres_url: str, redis_url: str, moto_s3: S3Endpoint) -> Iterator[WorkerEnv]:
    """Worker processes of one tenant whose bucket is on moto; the test's own settings reach moto directly."""
    upgrade(postgres_url)
    values = worker_environment(tmp_path, postgres_url, redis_url)
    values.update({f"SOA_{key.upper()}": str(value) for key, value in s3_values(moto_s3).items()})
    env = WorkerEnv(tmp_path, values)
    yield env
    for process in env.started:
        process.kill()


@pytest.fixture
async def db(files_worker: WorkerEnv) -> AsyncIterator[Database]:
    database = Database(files_worker.settings.sqlalchemy_url)
    yield database
    await database.dispose()


@pytest.fixture
async def storage(files_worker: WorkerEnv) -> Storage:
    store = S3Storage(files_worker.settings)
    await store.ensure_ready(versioning=False)
    return store


@pytest.fixture
def dispatcher(files_worker: WorkerEnv) -> Iterator[CeleryDispatcher]:
    dispatcher = CeleryDispatcher(create_celery(files_worker.settings))
    yield dispatcher
    dispatcher.close()


async def completed_upload(db: Database, storage: Storage, data: bytes, content_type: str = "text/plain") -> int:
    """A file whose bytes are in the store and whose owner completed the upload (what the api leaves behind)."""
    async with db.unit_of_work() as uow:
        owner = User(email=f"owner{utcnow().timestamp()}@alpha.gov.pk", display_name="Owner")
        uow.session.add(owner)
        await uow.session.flush()
        file = File(owner_id=owner.id, filename="minutes.txt", content_type=content_type, size=len(data),
                    storage_key=f"files/new/{owner.id}", completed_at=utcnow())  # fmt: skip
        uow.session.add(file)
        await uow.session.flush()
        file.storage_key = f"files/{file.id}/key"
        key, file_id = file.storage_key, file.id
    put = storage.presign_put(key, content_type=content_type, expires=timedelta(minutes=5))
    async with httpx.AsyncClient() as client:
        assert (await client.put(put.url, content=data, headers=put.headers)).status_code == 200
    return file_id


async def reload(db: Database, file_id: int) -> File:
    async with db.sessions() as session:
        file = await session.get(File, file_id)
    assert file is not None
    return file


async def decided(db: Database, file_id: int) -> File | None:
    file = await reload(db, file_id)
    return file if file.status is not FileStatus.pending else None


async def verdicts(db: Database, file_id: int) -> list[str]:
    async with db.sessions() as session:
        rows = await session.scalars(
            select(AuditEvent.action).where(AuditEvent.target_type == "file", AuditEvent.target_id == str(file_id))
        )
        return list(rows.all())


async def test_the_worker_makes_a_completed_upload_available(
    files_worker: WorkerEnv, db: Database, storage: Storage, dispatcher: CeleryDispatcher
) -> None:
    file_id = await completed_upload(db, storage, DATA)
    files_worker.start_worker()

    await dispatcher.send(VERIFY, file_id)

    file = await eventually(lambda: decided(db, file_id), what="the verdict")
    assert file.status is FileStatus.available
    assert (file.sha256, file.detected_type, file.reject_reason) == (hashlib.sha256(DATA).hexdigest(), "text/plain", "")
    assert file.verified_at is not None
    assert await verdicts(db, file_id) == ["file.verified"]


async def test_a_batchs_verifications_fan_out_and_each_file_is_decided_once(
    files_worker: WorkerEnv, db: Database, storage: Storage, dispatcher: CeleryDispatcher
) -> None:
    file_ids = [await completed_upload(db, storage, DATA) for _ in range(3)]
    files_worker.start_worker()

    await dispatcher.send("soa.files.verify_many", file_ids)
    await dispatcher.send("soa.files.verify_many", file_ids)  # a redelivered batch: its files are decided already

    files = [await eventually(lambda i=i: decided(db, i), what=f"the verdict on file {i}") for i in file_ids]
    assert [file.status for file in files] == [FileStatus.available] * 3
    await asyncio.sleep(1.0)  # the second batch's verifications have run by now, or are about to
    assert [await verdicts(db, i) for i in file_ids] == [["file.verified"]] * 3


async def test_a_worker_killed_during_verification_verifies_the_file_exactly_once(
    files_worker: WorkerEnv, db: Database, storage: Storage, dispatcher: CeleryDispatcher, moto_s3: S3Endpoint
) -> None:
    file_id = await completed_upload(db, storage, DATA)
    bucket = files_worker.values["SOA_S3_BUCKET"]
    port = int(moto_s3.endpoint.rsplit(":", 1)[1])
    async with HoldingProxy("127.0.0.1", port, f"GET /{bucket}/files/{file_id}/".encode()) as proxy:
        files_worker.values["SOA_S3_ENDPOINT"] = proxy.endpoint
        proxy.hold()
        first = files_worker.start_worker()
        await dispatcher.send(VERIFY, file_id)
        await eventually(lambda: _async(proxy.held >= 1), what="the worker to be reading the object")

        first.kill()  # mid-read: the object's bytes never arrived
        proxy.release()
        assert (await reload(db, file_id)).status is FileStatus.pending  # the killed attempt wrote nothing
        files_worker.start_worker()

        file = await eventually(lambda: decided(db, file_id), within=30, what="redelivery to the second worker")
        await asyncio.sleep(1.5)  # a further (needless) redelivery would have decided again by now
    assert len(proxy.seen) >= 2  # both workers read the object
    assert file.status is FileStatus.available
    assert file.sha256 == hashlib.sha256(DATA).hexdigest()
    assert await verdicts(db, file_id) == ["file.verified"]


async def _async(value: bool) -> bool:
    return value


async def test_the_sweep_sends_a_lost_verification_again(
    files_worker: WorkerEnv, db: Database, storage: Storage, dispatcher: CeleryDispatcher
) -> None:
    file_id = await completed_upload(db, storage, DATA)
    async with db.unit_of_work() as uow:  # completed a quarter of an hour ago, and its enqueue was lost
        file = await uow.session.get(File, file_id)
        assert file is not None
        file.completed_at = utcnow() - timedelta(minutes=15)
    files_worker.start_worker()

    await dispatcher.send("soa.files.sweep_uploads")

    file = await eventually(lambda: decided(db, file_id), what="the swept verification")
    assert file.status is FileStatus.available
    assert "soa.files.sweep_uploads" in (files_worker.tmp_path / "worker0.log").read_text()


async def test_verification_and_its_s3_calls_are_one_trace(
    files_worker: WorkerEnv, db: Database, storage: Storage, dispatcher: CeleryDispatcher, otlp_receiver: OtlpReceiver
) -> None:
    file_id = await completed_upload(db, storage, DATA)
    files_worker.start_worker(OTEL_EXPORTER_OTLP_ENDPOINT=otlp_receiver.endpoint)

    await dispatcher.send(VERIFY, file_id)

    (verify,) = otlp_receiver.wait_for(
        lambda span: span.name == "files.verify" and span.attributes.get("soa.file_id") == file_id, timeout=20
    )
    (task,) = otlp_receiver.wait_for(lambda span: span.span_id == verify.parent_span_id)
    steps = otlp_receiver.wait_for(lambda span: span.parent_span_id == verify.span_id, count=3)
    http = otlp_receiver.wait_for(
        lambda span: span.trace_id == verify.trace_id and span.scope.endswith("urllib3"), count=2
    )
    spans = {span.span_id: span for span in otlp_receiver.spans() if span.trace_id == verify.trace_id}

    def step_of(span: SpanRecord) -> str:
        """The verification step an HTTP call was made in."""
        while span.parent_span_id in spans and spans[span.parent_span_id].span_id != verify.span_id:
            span = spans[span.parent_span_id]
        assert span.parent_span_id == verify.span_id, "every S3 call nests under the verification span"
        return span.name

    assert task.name == f"run/{VERIFY}"
    assert verify.attributes["soa.files.status"] == "available"
    assert {"files.verify.stat", "files.verify.read", "files.verify.sniff"} <= {span.name for span in steps}
    assert {step_of(span) for span in http} == {"files.verify.stat", "files.verify.read"}


async def test_a_batchs_fanned_out_verifications_stay_in_the_batchs_trace(
    files_worker: WorkerEnv, db: Database, storage: Storage, dispatcher: CeleryDispatcher, otlp_receiver: OtlpReceiver
) -> None:
    file_ids = [await completed_upload(db, storage, DATA) for _ in range(2)]
    files_worker.start_worker(OTEL_EXPORTER_OTLP_ENDPOINT=otlp_receiver.endpoint)

    await dispatcher.send("soa.files.verify_many", file_ids)

    # the receiver outlives the test, and file ids restart in each test's database: find the fan-out first
    (fan_out,) = otlp_receiver.wait_for(lambda span: span.name == "run/soa.files.verify_many", timeout=20)
    verifications = otlp_receiver.wait_for(
        lambda span: span.name == "files.verify" and span.trace_id == fan_out.trace_id, count=2, timeout=20
    )
    assert {span.attributes.get("soa.file_id") for span in verifications} == set(file_ids)
    assert {span.trace_id for span in verifications} == {fan_out.trace_id}


TOO_LARGE = "too large for the virus scanner (raise clamd's StreamMaxLength)"


@pytest.fixture(scope="module")
def clamd() -> Iterator[ClamdServer]:
    server = ClamdServer(stream_max_bytes=1024 * 1024).start()
    try:
        yield server
    finally:
        server.close()


@pytest.mark.parametrize(
    ("data", "status", "reason"),
    [
        (DATA, FileStatus.available, ""),
        (b"harmless start " * 1000 + MARKER + b" harmless end\n", FileStatus.rejected,
         f"virus found: {SIGNATURE}.UNOFFICIAL"),
        (b"x" * (1024 * 1024 + 1), FileStatus.rejected, TOO_LARGE),
    ],
    ids=["clean", "infected", "beyond-the-scanner-limit"],
)  # fmt: skip
async def test_clamd_scans_every_upload_when_configured(
    files_worker: WorkerEnv, db: Database, storage: Storage, clamd: ClamdServer, data: bytes, status: FileStatus,
    reason: str,
) -> None:  # fmt: skip
    file_id = await completed_upload(db, storage, data)
    settings = files_worker.settings.model_copy(update={"clamd_address": clamd.address})

    result = await verify_file(db, storage, settings, file_id)

    file = await reload(db, file_id)
    assert (result, file.status, file.reject_reason) == (status, status, reason)
    if status is FileStatus.rejected:
        assert await storage.stat(file.storage_key) is None  # an infected file's bytes are removed


async def test_an_upload_whose_object_vanished_is_rejected_as_missing(
    files_worker: WorkerEnv, db: Database, storage: Storage
) -> None:
    file_id = await completed_upload(db, storage, DATA)
    await storage.delete((await reload(db, file_id)).storage_key)

    result = await verify_file(db, storage, files_worker.settings, file_id)
    again = await verify_file(db, storage, files_worker.settings, file_id)

    file = await reload(db, file_id)
    assert (result, again) == (FileStatus.rejected, None)
    assert file.reject_reason == "upload missing: nothing was stored at the upload URL"
    assert await verdicts(db, file_id) == ["file.rejected"]
