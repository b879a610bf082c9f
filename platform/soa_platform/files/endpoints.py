"""Files: announce an upload, complete it, read its metadata, get a download link, delete it; usage for admins.

Bytes never pass through these routes: clients PUT and GET them with the presigned requests returned here.
When file storage is disabled or not configured, every route answers 404 "file storage is disabled for this
workspace".
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Response, status

from soa_platform.dependencies import AdminUser, CurrentUser, PlatformDep, UowDep
from soa_platform.files import service
from soa_platform.files.models import File
from soa_platform.files.schemas import (
    MAX_BATCH,
    DownloadOut,
    DownloadsOut,
    FileBatchComplete,
    FileBatchCreate,
    FileBatchUploadOut,
    FileComplete,
    FileCreate,
    FileListOut,
    FileOut,
    FileUploadOut,
    PartUploadOut,
    PresignedOut,
    StorageUsageOut,
    UploadOut,
    UsageOut,
)
from soa_platform.files.storage import PresignedRequest
from soa_platform.identity.models import User

router = APIRouter(tags=["files"], responses={401: {}, 404: {}})


async def rate_limited_user(user: CurrentUser, platform: PlatformDep) -> User:
    await platform.limiter.hit("write", str(user.id))
    return user


WritingUser = Annotated[User, Depends(rate_limited_user)]
FileId = Annotated[int, Path(ge=1, le=2**62)]
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        pattern=r"^[A-Za-z0-9._:-]{1,100}$",
        description="a client-chosen key: a retry with the same key returns the same file and creates nothing new",
    ),
]

BatchIdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        pattern=r"^[A-Za-z0-9._:-]{1,96}$",
        description="a client-chosen key: a retry with the same key returns the same files and creates nothing new",
    ),
]


def _presigned(request: PresignedRequest) -> PresignedOut:
    return PresignedOut(method=request.method, url=request.url, headers=dict(request.headers),
                        expires_at=request.expires_at)  # fmt: skip


def _upload_out(plan: service.UploadPlan | None) -> UploadOut | None:
    if plan is None:
        return None
    if plan.kind == "single":
        assert plan.request is not None
        return UploadOut(kind="single", request=_presigned(plan.request))
    parts = [PartUploadOut(number=number, **_presigned(request).model_dump()) for number, request in plan.parts]
    return UploadOut(kind="multipart", upload_id=plan.upload_id, part_size=plan.part_size, parts=parts)


def _with_upload(file: File, plan: service.UploadPlan | None) -> FileUploadOut:
    return FileUploadOut.model_validate({**FileOut.model_validate(file).model_dump(), "upload": _upload_out(plan)})


@router.post(
    "/v1/files",
    response_model=FileUploadOut,
    status_code=201,
    responses={
        200: {"description": "a retry with the same Idempotency-Key: the file announced first"},
        403: {"description": "the workspace's storage quota would be exceeded"},
        409: {},
        413: {"description": "larger than the tenant's maximum upload size"},
        429: {},
    },
)
async def create_file(
    body: FileCreate,
    response: Response,
    user: WritingUser,
    platform: PlatformDep,
    uow: UowDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> FileUploadOut:
    """Announce an upload: returns the pending file and where to PUT its bytes (one URL, or one per part when it
    is larger than the multipart part size). Then call `POST /v1/files/{id}/complete`."""
    file, plan, created = await service.create(uow, platform, user, body, idempotency_key)
    if not created:
        response.status_code = status.HTTP_200_OK
    return _with_upload(file, plan)


@router.post(
    "/v1/files/batch",
    response_model=FileBatchUploadOut,
    status_code=201,
    responses={
        200: {"description": "a retry with the same Idempotency-Key: the files announced first"},
        403: {"description": "the workspace's storage quota would be exceeded by these files together"},
        409: {},
        413: {"description": "one of the files is larger than the tenant's maximum upload size"},
        429: {},
    },
)
async def create_files(
    body: FileBatchCreate,
    response: Response,
    user: WritingUser,
    platform: PlatformDep,
    uow: UowDep,
    idempotency_key: BatchIdempotencyKeyHeader = None,
) -> FileBatchUploadOut:
    """Announce up to 10 uploads in one request (all or none, one quota check for their total), as a client does
    when several files are dropped at once. Then complete them with `POST /v1/files/complete`."""
    announced, created = await service.create_batch(uow, platform, user, body.files, idempotency_key)
    if not created:
        response.status_code = status.HTTP_200_OK
    return FileBatchUploadOut(files=[_with_upload(file, plan) for file, plan in announced])


@router.post("/v1/files/complete", response_model=FileListOut, responses={400: {}, 409: {}})
async def complete_files(body: FileBatchComplete, user: WritingUser, platform: PlatformDep, uow: UowDep) -> FileListOut:
    """Complete up to 10 uploads in one request, all or none: each one's verification starts. Idempotent."""
    items = [(item.id, item.parts) for item in body.files]
    files = await service.complete_batch(uow, platform, user, items)
    return FileListOut(files=[FileOut.model_validate(file) for file in files])


@router.post("/v1/files/{file_id}/complete", response_model=FileOut, responses={400: {}, 409: {}})
async def complete_file(
    file_id: FileId, user: WritingUser, platform: PlatformDep, uow: UowDep, body: FileComplete | None = None
) -> FileOut:
    """The bytes are uploaded (multipart: with every part's ETag): verification starts. Idempotent."""
    file = await service.complete(uow, platform, user, file_id, body.parts if body else [])
    return FileOut.model_validate(file)


@router.get("/v1/files/downloads", response_model=DownloadsOut, responses={409: {}})
async def download_files(
    user: CurrentUser,
    platform: PlatformDep,
    uow: UowDep,
    ids: Annotated[list[Annotated[int, Query(ge=1, le=2**62)]], Query(alias="id", min_length=1, max_length=MAX_BATCH)],
) -> DownloadsOut:
    """Short-lived GETs of up to 10 files at once (`?id=1&id=2`: a message's attachments), all or none: 404 for a
    file you cannot see, 409 for one pending or rejected."""
    wanted = list(dict.fromkeys(ids))
    requests = await service.download_batch(uow, platform, user, wanted)
    return DownloadsOut(
        downloads=[DownloadOut(file_id=file_id, **_presigned(request).model_dump())
                   for file_id, request in zip(wanted, requests, strict=True)]
    )  # fmt: skip


@router.get("/v1/files/{file_id}", response_model=FileOut)
async def get_file(file_id: FileId, user: CurrentUser, platform: PlatformDep, uow: UowDep) -> FileOut:
    """A file you own, or one attached to a message you can see."""
    service.require_storage(platform)
    return FileOut.model_validate(await service.visible(uow, user, file_id))


@router.get("/v1/files/{file_id}/download", response_model=PresignedOut, responses={409: {}})
async def download_file(file_id: FileId, user: CurrentUser, platform: PlatformDep, uow: UowDep) -> PresignedOut:
    """A short-lived GET of the file's bytes (409 while it is pending, or when it was rejected, with the reason)."""
    return _presigned(await service.download(uow, platform, user, file_id))


@router.delete("/v1/files/{file_id}", status_code=204, responses={403: {}})
async def delete_file(file_id: FileId, user: WritingUser, platform: PlatformDep, uow: UowDep) -> Response:
    """Delete a file and its stored bytes (its owner or an admin; audited; idempotent)."""
    await service.delete(uow, platform, user, file_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/v1/admin/files/usage", response_model=StorageUsageOut, responses={403: {}}, tags=["admin"])
async def storage_usage(_admin: AdminUser, platform: PlatformDep, uow: UowDep) -> StorageUsageOut:
    """What the files take: by the database (pending and available files) and by the store itself."""
    database, stored = await service.usage(uow, platform)
    settings = platform.settings
    return StorageUsageOut(
        database=UsageOut(bytes=database.bytes, objects=database.objects),
        storage=UsageOut(bytes=stored.bytes, objects=stored.objects),
        quota_bytes=settings.storage_quota_bytes,
        max_upload_bytes=settings.storage_max_upload_bytes,
    )
