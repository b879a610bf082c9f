"""Request and response bodies of files endpoints."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from soa_platform.files.models import FileStatus

MAX_FILENAME_BYTES = 255
MAX_BATCH = 10  # files announced or completed in one request: one message's worth of attachments
# type/subtype with optional parameters, RFC 6838 token characters (e.g. `text/plain; charset=utf-8`)
_NAME = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
_PARAMETER = rf"\s*;\s*{_NAME}=(\"[^\"\\\x00-\x1f]*\"|[A-Za-z0-9!#$&^_.+-]+)"
CONTENT_TYPE = re.compile(rf"^{_NAME}/{_NAME}({_PARAMETER})*$")
# text-direction overrides (U+202E...) make a name like `evil<RLO>fdp.exe` display as `evilexe.pdf`
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


class FileCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    filename: str = Field(min_length=1, max_length=MAX_FILENAME_BYTES, description="a name, not a path")
    content_type: str = Field(max_length=255, description="the MIME type the bytes will be checked against")
    size: int = Field(ge=1, le=2**53, description="exact size in bytes")

    @field_validator("filename")
    @classmethod
    def _sane_filename(cls, value: str) -> str:
        if len(value.encode()) > MAX_FILENAME_BYTES:
            raise ValueError(f"a file name is at most {MAX_FILENAME_BYTES} bytes in UTF-8")
        if "/" in value or "\\" in value:
            raise ValueError("a file name must not contain / or \\")
        if any(unicodedata.category(ch) == "Cc" or ch in _BIDI_CONTROLS for ch in value):
            raise ValueError("a file name must not contain control or text-direction characters")
        if value != value.strip() or value.strip(". ") == "":
            raise ValueError("a file name must not start or end with spaces, nor be only dots")
        return unicodedata.normalize("NFC", value)

    @field_validator("content_type")
    @classmethod
    def _mime_syntax(cls, value: str) -> str:
        if not CONTENT_TYPE.match(value):
            raise ValueError("content_type must be a MIME type such as application/pdf")
        kind, _, rest = value.partition(";")
        return kind.lower() + (";" + rest if rest else "")


class PartETag(BaseModel):
    model_config = ConfigDict(extra="forbid")
    number: int = Field(ge=1, le=10_000)
    etag: str = Field(min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$")


class FileComplete(BaseModel):
    model_config = ConfigDict(extra="forbid")
    parts: list[PartETag] = Field(
        default_factory=list, max_length=10_000, description="multipart uploads: every part's number and ETag"
    )


class FileBatchCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    files: list[FileCreate] = Field(min_length=1, max_length=MAX_BATCH, description=f"1 to {MAX_BATCH} files")


class FileCompleteItem(FileComplete):
    id: int = Field(ge=1, le=2**62)


class FileBatchComplete(BaseModel):
    model_config = ConfigDict(extra="forbid")
    files: list[FileCompleteItem] = Field(min_length=1, max_length=MAX_BATCH, description=f"1 to {MAX_BATCH} files")

    @field_validator("files")
    @classmethod
    def _each_once(cls, value: list[FileCompleteItem]) -> list[FileCompleteItem]:
        if len({item.id for item in value}) != len(value):
            raise ValueError("each file is listed once")
        return value


class PresignedOut(BaseModel):
    method: str
    url: str
    headers: dict[str, str] = Field(description="send these headers exactly as given")
    expires_at: datetime


class DownloadOut(PresignedOut):
    file_id: int


class DownloadsOut(BaseModel):
    downloads: list[DownloadOut] = Field(description="in the order asked")


class PartUploadOut(PresignedOut):
    number: int


class UploadOut(BaseModel):
    kind: Literal["single", "multipart"]
    request: PresignedOut | None = Field(default=None, description="single: one PUT of all the bytes")
    upload_id: str | None = Field(default=None, description="multipart: the store's upload id")
    part_size: int | None = Field(default=None, description="multipart: bytes per part (the last one may be shorter)")
    parts: list[PartUploadOut] = Field(default_factory=list, description="multipart: one PUT per part")


class FileOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    owner_id: int
    filename: str
    content_type: str
    size: int
    status: FileStatus
    reject_reason: str | None = Field(default=None, description="why verification rejected it")
    sha256: str | None = None
    detected_type: str | None = Field(default=None, description="the type sniffed from its content")
    created_at: datetime
    completed_at: datetime | None = None
    verified_at: datetime | None = None

    @field_validator("reject_reason", mode="before")
    @classmethod
    def _empty_is_none(cls, value: str | None) -> str | None:
        return value or None


class FileUploadOut(FileOut):
    upload: UploadOut | None = Field(description="where to send the bytes; null once the upload was completed")


class FileBatchUploadOut(BaseModel):
    files: list[FileUploadOut] = Field(description="in the order they were announced")


class FileListOut(BaseModel):
    files: list[FileOut]


class AttachmentOut(BaseModel):
    file_id: int
    filename: str
    content_type: str
    size: int
    position: int


class UsageOut(BaseModel):
    bytes: int
    objects: int


class StorageUsageOut(BaseModel):
    database: UsageOut = Field(description="pending and available files, by their declared sizes")
    storage: UsageOut = Field(description="what the store holds (all versions)")
    quota_bytes: int
    max_upload_bytes: int
