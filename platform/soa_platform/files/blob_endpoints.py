"""The local driver's presigned URLs: `PUT` and `GET /v1/files/blob/{token}` (embedded default only).

The signed token in the path is the authentication, as the signature of an S3 presigned URL is: no
bearer token is asked for. With any other driver these routes answer 404, so in production the api
never carries file bytes. They are left out of the OpenAPI schema: they belong to the object store's
protocol, not to the api's.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse

from soa_platform.dependencies import PlatformDep
from soa_platform.errors import Conflict, DomainError, Forbidden, NotFound, PayloadTooLarge
from soa_platform.files.disposition import attachment_disposition
from soa_platform.files.local import BLOB_PATH, BlobNotFound, BlobRefused, BlobTooLarge, LocalStorage
from soa_platform.files.storage import StorageError

router = APIRouter(prefix=BLOB_PATH, tags=["files"], include_in_schema=False)

# served under the api's own origin: never let a browser render or sniff user content here
_SAFE_HEADERS = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox", "Cache-Control": "private"}


def _local_storage(platform: PlatformDep) -> LocalStorage:
    storage = platform.storage
    if not isinstance(storage, LocalStorage):
        raise NotFound("not found")  # the object store serves transfers itself
    return storage


def _refusal(error: BlobRefused) -> DomainError:
    if isinstance(error, BlobTooLarge):
        return PayloadTooLarge(error.message)
    if isinstance(error, BlobNotFound):
        return NotFound(error.message)
    return Forbidden(error.message)


@router.put("/{token}")
async def put_blob(token: str, request: Request, platform: PlatformDep) -> Response:
    """Store the request body under the token's key (or as one part of a multipart upload)."""
    storage = _local_storage(platform)
    try:
        grant = storage.verify_token(token, "PUT")
        declared = request.headers.get("content-length")
        if grant.max_size is not None and declared and declared.isdigit() and int(declared) > grant.max_size:
            raise BlobTooLarge(f"the upload is larger than this link allows ({grant.max_size} bytes)")
        etag = await storage.receive(grant, request.stream(), content_type=request.headers.get("content-type"))
    except BlobRefused as error:
        raise _refusal(error) from None
    except StorageError as error:
        raise Conflict(str(error)) from None
    return Response(status_code=200, headers={"ETag": f'"{etag}"'})


@router.get("/{token}")
async def get_blob(token: str, platform: PlatformDep) -> FileResponse:
    """Stream the token's object as an attachment with the type and file name the token names."""
    storage = _local_storage(platform)
    try:
        grant = storage.verify_token(token, "GET")
        path = storage.object_path(grant.key)
    except BlobRefused as error:
        raise _refusal(error) from None
    except StorageError:
        raise NotFound("no such object") from None
    if not path.is_file():
        raise NotFound("no such object")
    info = await storage.stat(grant.key)
    headers = {"Content-Disposition": attachment_disposition(grant.filename or path.name), **_SAFE_HEADERS}
    if info is not None and info.etag:
        headers["ETag"] = f'"{info.etag}"'
    media_type = grant.content_type or "application/octet-stream"
    return FileResponse(path, media_type=media_type, headers=headers)
