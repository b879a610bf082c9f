"""A loopback TCP proxy in front of an S3 server that can hold back the answers to object GETs: a worker
reading an upload stalls mid-verification for as long as the test wants (and can be killed there)."""

from __future__ import annotations

import asyncio
import contextlib


class HoldingProxy:
    def __init__(self, target_host: str, target_port: int, hold_prefix: bytes) -> None:
        self.target = (target_host, target_port)
        self.hold_prefix = hold_prefix  # e.g. b"GET /bucket/files/": requests whose answers are held
        self.port = 0
        self.held = 0  # requests whose answers were held so far
        self.seen: list[bytes] = []  # request lines matching the prefix
        self._release = asyncio.Event()
        self._release.set()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def hold(self) -> None:
        self._release.clear()

    def release(self) -> None:
        self._release.set()

    async def __aenter__(self) -> HoldingProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        self.release()
        for writer in list(self._writers):
            writer.transport.abort()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection(*self.target)
        self._writers |= {client_writer, server_writer}
        holding = asyncio.Event()  # set while this connection's current answer must wait for release
        try:
            await asyncio.gather(
                self._requests(client_reader, server_writer, holding),
                self._answers(server_reader, client_writer, holding),
            )
        finally:
            self._writers -= {client_writer, server_writer}
            client_writer.transport.abort()
            server_writer.transport.abort()

    async def _requests(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, holding: asyncio.Event
    ) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                if data.startswith(self.hold_prefix):
                    self.seen.append(data.split(b"\r\n", 1)[0])
                    if not self._release.is_set():
                        self.held += 1
                        holding.set()
                writer.write(data)
                await writer.drain()
        writer.transport.abort()

    async def _answers(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, holding: asyncio.Event
    ) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                if holding.is_set():
                    await self._release.wait()
                    holding.clear()
                writer.write(data)
                await writer.drain()
        writer.transport.abort()
