"""The Content-Disposition both drivers put on downloads (RFC 6266 with an RFC 5987 UTF-8 name)."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

_UNSAFE_ASCII = re.compile(r"[^A-Za-z0-9 !#$&+,.;=@^_`{}~()\[\]-]")


def attachment_disposition(filename: str) -> str:
    """`attachment; filename="fallback"; filename*=UTF-8''…`: browsers save the file under `filename`."""
    name = filename.replace("\\", "_").replace("/", "_").strip() or "download"
    fallback = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    fallback = _UNSAFE_ASCII.sub("_", fallback).strip() or "download"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
