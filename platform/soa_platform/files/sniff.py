"""A file's type from its first bytes (libmagic, through `python-magic`), compared with the declared type.

The comparison is deliberately tolerant where libmagic cannot tell formats apart (a .docx is a zip, JSON
is text) and strict where the difference matters (HTML or an executable declared as an image or a PDF).
"""

from __future__ import annotations

import threading

import magic

SNIFF_BYTES = 64 * 1024  # enough for libmagic's tests of the common formats

ANY = "application/octet-stream"  # declared: "some bytes", accepts whatever arrives

# names libmagic and browsers use for the same thing
_ALIASES = {
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "image/x-png": "image/png",
    "image/x-ms-bmp": "image/bmp",
    "audio/mp3": "audio/mpeg",
    "audio/x-wav": "audio/wav",
    "audio/wave": "audio/wav",
    "application/x-pdf": "application/pdf",
    "application/x-zip-compressed": "application/zip",
    "application/x-zip": "application/zip",
    "application/x-gzip": "application/gzip",
    "application/xml": "text/xml",
    "application/x-javascript": "text/javascript",
    "application/javascript": "text/javascript",
    "application/x-yaml": "text/yaml",
    "application/yaml": "text/yaml",
    "text/x-markdown": "text/markdown",
    "application/csv": "text/csv",
}

# declared types whose content is text: libmagic reports them as some text/*
_TEXT_LIKE = frozenset(
    {"application/json", "application/ld+json", "application/x-ndjson", "application/sql", "application/x-sh",
     "application/x-httpd-php", "application/rtf", "image/svg+xml", "application/x-tex", "message/rfc822"}
)  # fmt: skip

# zip containers: libmagic often reports only the container
_ZIP_PREFIXES = ("application/vnd.openxmlformats-officedocument.", "application/vnd.oasis.opendocument.")
_ZIP_BASED = frozenset(
    {"application/epub+zip", "application/java-archive", "application/vnd.android.package-archive",
     "application/vnd.ms-xpsdocument", "application/vnd.ms-excel.sheet.macroenabled.12",
     "application/vnd.ms-word.document.macroenabled.12", "application/vnd.ms-powerpoint.presentation.macroenabled.12"}
)  # fmt: skip

# legacy Office files are OLE compound documents
_OLE_DETECTED = frozenset({"application/x-ole-storage", "application/cdfv2", "application/vnd.ms-office"})
_OLE_DECLARED = frozenset(
    {"application/msword", "application/vnd.ms-excel", "application/vnd.ms-powerpoint", "application/vnd.ms-outlook",
     "application/vnd.visio", "application/vnd.ms-project"}
)  # fmt: skip

# declared types libmagic recognises reliably: for these, "unknown binary" is a mismatch
_RECOGNISABLE_MAJORS = frozenset({"text", "image"})
_RECOGNISABLE = frozenset({"application/pdf", "application/zip", "application/gzip", "application/json", "text/html"})

_magic = magic.Magic(mime=True)
_lock = threading.Lock()  # a libmagic handle is not safe to share between threads


def base_type(content_type: str) -> str:
    """`type/subtype` in lower case, without parameters, with common aliases resolved."""
    bare = content_type.split(";", 1)[0].strip().lower()
    return _ALIASES.get(bare, bare)


def sniff(head: bytes) -> str:
    """The MIME type libmagic finds in a file's first bytes."""
    with _lock:
        detected = _magic.from_buffer(head[:SNIFF_BYTES])
    return str(detected).lower()


def matches(declared: str, detected: str) -> bool:
    """Whether content sniffed as `detected` may be stored as the declared type."""
    want, got = base_type(declared), base_type(detected)
    if want in (ANY, got):
        return True
    if got.startswith("text/") and (want.startswith("text/") or want in _TEXT_LIKE):
        return True
    if got == "application/zip" and (want.startswith(_ZIP_PREFIXES) or want in _ZIP_BASED):
        return True
    if got in _OLE_DETECTED and want in _OLE_DECLARED:
        return True
    if got == ANY:  # libmagic does not know the format: refuse only where it would have known
        return want.split("/", 1)[0] not in _RECOGNISABLE_MAJORS and want not in _RECOGNISABLE
    return False
