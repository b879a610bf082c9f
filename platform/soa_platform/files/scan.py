"""Optional virus scan: stream an object to clamd with its INSTREAM command (docs/adr/0007).

`SOA_CLAMD_ADDRESS` is `host:port` or the path of clamd's unix socket; empty means no scan. The bytes
go to clamd in chunks as they arrive from the store, so a file is never held whole in memory or on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass

CHUNK = 64 * 1024  # below clamd's smallest sensible StreamMaxLength; clamd reassembles the stream
CONNECT_SECONDS = 10.0
VERDICT_SECONDS = 300.0  # clamd scans after the last chunk: large archives take a while
MAX_REPLY = 4096
SIZE_LIMIT = "INSTREAM size limit exceeded"


class ScanError(Exception):
    """clamd could not be reached or answered something unexpected: worth a retry."""


@dataclass(frozen=True)
class Verdict:
    clean: bool
    signature: str = ""  # what clamd found, e.g. "Eicar-Test-Signature"
    too_large: bool = False  # beyond clamd's StreamMaxLength: not scanned


async def _connect(address: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    if address.startswith(("/", "unix:")):
        return await asyncio.open_unix_connection(address.removeprefix("unix:"))
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ScanError(f"SOA_CLAMD_ADDRESS must be host:port or a socket path, not {address!r}")
    return await asyncio.open_connection(host.strip("[]"), int(port))


async def _read_reply(reader: asyncio.StreamReader) -> str:
    reply = b""
    while not reply.endswith(b"\0") and len(reply) < MAX_REPLY:
        data = await reader.read(MAX_REPLY)
        if not data:
            break
        reply += data
    return reply.rstrip(b"\0").decode("utf-8", "replace").strip()


def parse_reply(reply: str) -> Verdict:
    """clamd's answer to INSTREAM: `stream: OK`, `stream: <signature> FOUND`, or an error line."""
    if reply.startswith(SIZE_LIMIT):
        return Verdict(clean=False, too_large=True)
    if reply == "stream: OK":
        return Verdict(clean=True)
    if reply.startswith("stream: ") and reply.endswith(" FOUND"):
        return Verdict(clean=False, signature=reply.removeprefix("stream: ").removesuffix(" FOUND").strip())
    raise ScanError(f"unexpected answer from clamd: {reply[:200]!r}")


async def scan_stream(address: str, chunks: AsyncIterator[bytes]) -> Verdict:
    """Send the bytes of `chunks` to clamd at `address` and return its verdict."""
    try:
        reader, writer = await asyncio.wait_for(_connect(address), CONNECT_SECONDS)
    except (OSError, TimeoutError) as error:
        raise ScanError(f"cannot reach clamd at {address}: {error}") from error
    try:
        try:
            writer.write(b"zINSTREAM\0")
            async for data in chunks:
                for start in range(0, len(data), CHUNK):
                    piece = data[start : start + CHUNK]
                    writer.write(struct.pack("!L", len(piece)) + piece)
                    await writer.drain()  # backpressure: never buffer more than the socket takes
            writer.write(struct.pack("!L", 0))
            await writer.drain()
        except ConnectionError:
            pass  # clamd stops reading at its size limit and says so: its reply follows
        try:
            reply = await asyncio.wait_for(_read_reply(reader), VERDICT_SECONDS)
        except (OSError, TimeoutError) as error:
            raise ScanError(f"no answer from clamd: {error}") from error
        return parse_reply(reply)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
