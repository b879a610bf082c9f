"""aiortc peers that play the browser against Janus's videoroom: a publisher of synthetic 320x240 video
and subscribers that count the frames they decode. They speak the client side of the Janus WebSocket
API with a per-join token (never the API secret), the way the web client does.

ICE: `RTCConfiguration(iceServers=[])` (aiortc would otherwise ask a public STUN server), or a TURN server
with `iceTransportPolicy="relay"` so every packet goes through coturn.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import websockets
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription, VideoStreamTrack
from aiortc.mediastreams import AudioStreamTrack, MediaStreamTrack
from aiortc.rtcconfiguration import RTCIceTransportPolicy
from av import VideoFrame

WIDTH, HEIGHT = 320, 240
VIDEOROOM = "janus.plugin.videoroom"


class JanusRefused(Exception):
    """Janus (core or videoroom) answered a request with an error."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


class SyntheticVideo(VideoStreamTrack):
    """A moving gradient at 320x240, 30 fps (aiortc paces `next_timestamp`)."""

    def __init__(self) -> None:
        super().__init__()
        self._count = 0

    async def recv(self) -> VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = VideoFrame(WIDTH, HEIGHT, "yuv420p")
        shade = (self._count * 4) % 256
        for plane_index, plane in enumerate(frame.planes):
            plane.update(bytes([shade if plane_index == 0 else 128]) * plane.buffer_size)
        self._count += 1
        frame.pts, frame.time_base = pts, time_base
        return frame


def ice_configuration(turn: dict[str, Any] | None = None) -> RTCConfiguration:
    """No STUN; with ``turn`` ({"urls", "username", "credential"}) relay-only through it."""
    if turn is None:
        return RTCConfiguration(iceServers=[])
    server = RTCIceServer(urls=turn["urls"], username=turn["username"], credential=turn["credential"])
    return RTCConfiguration(iceServers=[server], iceTransportPolicy=RTCIceTransportPolicy.RELAY)


@dataclass
class JanusSession:
    """One Janus session over WebSocket with a per-join token; requests are matched by transaction."""

    url: str
    token: str
    _ws: Any = None
    _session_id: int | None = None
    _pending: dict[str, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    _events: dict[int, asyncio.Queue[dict[str, Any]]] = field(default_factory=dict)
    _reader: asyncio.Task[None] | None = None
    _keepalive: asyncio.Task[None] | None = None
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    async def open(self) -> JanusSession:
        self._ws = await websockets.connect(self.url, subprotocols=["janus-protocol"])  # type: ignore[list-item]
        self._reader = asyncio.create_task(self._read())
        reply = await self.request({"janus": "create"})
        self._session_id = int(reply["data"]["id"])
        self._keepalive = asyncio.create_task(self._keep_alive())
        return self

    async def close(self) -> None:
        for task in (self._keepalive, self._reader):
            if task is not None:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()

    async def _read(self) -> None:
        try:
            async for raw in self._ws:
                message = json.loads(raw)
                kind = message.get("janus")
                transaction = message.get("transaction")
                if kind == "ack" and transaction in self._pending and not self._pending[transaction].done():
                    continue  # an async request: its answer comes later as an event with the same transaction
                if transaction in self._pending and not self._pending[transaction].done():
                    self._pending.pop(transaction).set_result(message)
                elif "sender" in message:
                    self._events.setdefault(int(message["sender"]), asyncio.Queue()).put_nowait(message)
        except websockets.ConnectionClosed:
            pass
        finally:
            self.closed.set()

    async def _keep_alive(self) -> None:
        while True:
            await asyncio.sleep(20)
            await self.request({"janus": "keepalive"}, expect_ack=True)

    async def request(
        self,
        body: dict[str, Any],
        *,
        handle_id: int | None = None,
        expect_ack: bool = False,
        timeout: float = 10,  # noqa: ASYNC109 - a test helper's bound
    ) -> dict[str, Any]:
        transaction = secrets.token_hex(8)
        payload = {**body, "transaction": transaction, "token": self.token}
        if self._session_id is not None and "session_id" not in payload:
            payload["session_id"] = self._session_id
        if handle_id is not None:
            payload["handle_id"] = handle_id
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        if not expect_ack:
            self._pending[transaction] = future
        await self._ws.send(json.dumps(payload))
        if expect_ack:
            return {}
        reply = await asyncio.wait_for(future, timeout)
        if reply.get("janus") == "error":
            raise JanusRefused(int(reply["error"]["code"]), str(reply["error"].get("reason")))
        data = reply.get("plugindata", {}).get("data", {})
        if "error_code" in data:
            raise JanusRefused(int(data["error_code"]), str(data.get("error")))
        return reply

    async def attach(self) -> int:
        reply = await self.request({"janus": "attach", "plugin": VIDEOROOM})
        handle_id = int(reply["data"]["id"])
        self._events.setdefault(handle_id, asyncio.Queue())
        return handle_id

    async def message(self, handle_id: int, body: dict[str, Any], jsep: dict[str, Any] | None = None) -> dict[str, Any]:
        payload: dict[str, Any] = {"janus": "message", "body": body}
        if jsep is not None:
            payload["jsep"] = jsep
        return await self.request(payload, handle_id=handle_id)

    async def next_event(self, handle_id: int, timeout: float = 10) -> dict[str, Any]:  # noqa: ASYNC109
        return await asyncio.wait_for(self._events.setdefault(handle_id, asyncio.Queue()).get(), timeout)


@dataclass
class Publisher:
    """Joins a room as a publisher and sends synthetic video (and silence, with ``audio``)."""

    session: JanusSession
    room: int
    token: str
    display: str = "publisher"
    pin: str | None = None
    audio: bool = False
    turn: dict[str, Any] | None = None
    participant_id: int = 0
    handle_id: int = 0
    pc: RTCPeerConnection | None = None
    up: asyncio.Event = field(default_factory=asyncio.Event)
    kicked: asyncio.Event = field(default_factory=asyncio.Event)
    _watcher: asyncio.Task[None] | None = None

    async def join_and_publish(self) -> Publisher:
        self.handle_id = await self.session.attach()
        body = {
            "request": "join",
            "ptype": "publisher",
            "room": self.room,
            "display": self.display,
            "token": self.token,
        }
        reply = await self.session.message(self.handle_id, {**body, **({"pin": self.pin} if self.pin else {})})
        joined = reply["plugindata"]["data"]
        if "error_code" in joined:
            raise JanusRefused(int(joined["error_code"]), str(joined.get("error")))
        self.participant_id = int(joined["id"])
        self.pc = RTCPeerConnection(ice_configuration(self.turn))
        self.pc.addTrack(SyntheticVideo())
        if self.audio:
            self.pc.addTrack(AudioStreamTrack())
        await self.pc.setLocalDescription(await self.pc.createOffer())
        offer = self.pc.localDescription
        reply = await self.session.message(
            self.handle_id,
            {"request": "publish", "audio": self.audio, "video": True},
            {"type": offer.type, "sdp": offer.sdp, "trickle": False},
        )
        answer = reply["jsep"]
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type=answer["type"]))
        self._watcher = asyncio.create_task(self._watch())
        await asyncio.wait_for(self.up.wait(), 10)  # Janus offers the feed only once its PeerConnection is up
        return self

    async def _watch(self) -> None:
        while True:
            event = await self.session.next_event(self.handle_id, timeout=3600)
            data = event.get("plugindata", {}).get("data", {})
            if event.get("janus") == "webrtcup":
                self.up.set()
            if data.get("leaving") in ("ok", self.participant_id) or data.get("kicked") == self.participant_id:
                self.kicked.set()
            if event.get("janus") in ("hangup", "detached"):
                self.kicked.set()

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
        if self.pc is not None:
            await self.pc.close()


@dataclass
class Subscriber:
    """Subscribes to publishers' feeds and counts decoded video frames."""

    session: JanusSession
    room: int
    token: str
    pin: str | None = None
    turn: dict[str, Any] | None = None
    frames: int = 0
    first_frame_at: float | None = None
    pc: RTCPeerConnection | None = None
    got_frames: asyncio.Event = field(default_factory=asyncio.Event)
    target_frames: int = 10
    _consumers: list[asyncio.Task[None]] = field(default_factory=list)

    async def subscribe(self, feeds: Sequence[int]) -> Subscriber:
        handle_id = await self.session.attach()
        streams = [{"feed": feed} for feed in feeds]
        body = {"request": "join", "ptype": "subscriber", "room": self.room, "streams": streams, "token": self.token}
        reply = await self.session.message(handle_id, {**body, **({"pin": self.pin} if self.pin else {})})
        if "jsep" not in reply:
            raise JanusRefused(0, f"no offer in {reply}")
        offer = reply["jsep"]
        self.pc = RTCPeerConnection(ice_configuration(self.turn))

        @self.pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "video":
                self._consumers.append(asyncio.create_task(self._consume(track)))

        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer["sdp"], type=offer["type"]))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        answer = self.pc.localDescription
        await self.session.message(
            handle_id, {"request": "start"}, {"type": answer.type, "sdp": answer.sdp, "trickle": False}
        )
        return self

    async def _consume(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(Exception):
            while True:
                frame = await track.recv()
                if isinstance(frame, VideoFrame) and (frame.width, frame.height) == (WIDTH, HEIGHT):
                    self.frames += 1
                    if self.first_frame_at is None:
                        self.first_frame_at = time.monotonic()
                    if self.frames >= self.target_frames:
                        self.got_frames.set()

    async def wait_for_frames(self, count: int, timeout: float = 10) -> int:  # noqa: ASYNC109
        self.target_frames = count
        if self.frames >= count:
            return self.frames
        await asyncio.wait_for(self.got_frames.wait(), timeout)
        return self.frames

    async def close(self) -> None:
        for task in self._consumers:
            task.cancel()
        if self.pc is not None:
            await self.pc.close()
