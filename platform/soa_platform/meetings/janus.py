"""The one module that talks to Janus: its HTTP API (a session with one videoroom handle) and admin API.

Rooms are created with an empty `allowed` list, so only a token this platform added can enter one; the
same token is a Janus stored token (admin API `add_token`), which is what lets a client use the Janus API
at all without the API secret. After a Janus restart the session is gone: the first call that meets
"no such session" opens a new one and is retried once; the caller recreates rooms (`ensure_room`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import httpx
from opentelemetry import trace

from soa_platform.errors import DomainError, ServiceUnavailable
from soa_platform.settings import PlatformSettings

log = logging.getLogger(__name__)

VIDEOROOM = "janus.plugin.videoroom"
SESSION_NOT_FOUND = 458
HANDLE_NOT_FOUND = 459
ROOM_NOT_FOUND = 426  # JANUS_VIDEOROOM_ERROR_NO_SUCH_ROOM
ROOM_EXISTS = 427  # JANUS_VIDEOROOM_ERROR_ROOM_EXISTS
NO_SUCH_FEED = 428  # JANUS_VIDEOROOM_ERROR_NO_SUCH_FEED


class MeetingServerUnavailable(ServiceUnavailable):
    code = "meeting_server_unavailable"


class MeetingServerError(DomainError):
    """Janus refused a request the platform made: a platform or Janus fault, never the client's."""

    status_code = 502
    code = "meeting_server_error"

    def __init__(self, message: str, janus_code: int | None = None) -> None:
        super().__init__(message)
        self.janus_code = janus_code


class _SessionLost(Exception):
    """Janus no longer knows our session or handle (it restarted, or the session timed out)."""


@dataclass(frozen=True)
class Participant:
    id: int
    display: str
    publisher: bool
    talking: bool | None = None


@dataclass(frozen=True)
class Room:
    room_id: int
    description: str
    num_participants: int
    max_publishers: int


class JanusController:
    """Async client of one Janus; safe to share within one event loop."""

    def __init__(
        self,
        url: str,
        admin_url: str,
        api_secret: str,
        admin_secret: str,
        *,
        timeout: float = 5.0,
        keepalive_seconds: float = 25.0,
        tracer_provider: trace.TracerProvider | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.admin_url = admin_url.rstrip("/")
        self._api_secret = api_secret
        self._admin_secret = admin_secret
        self._timeout = timeout
        self._keepalive_seconds = keepalive_seconds
        self._http: httpx.AsyncClient | None = None
        self._session_id: int | None = None
        self._handle_id: int | None = None
        self._lock: asyncio.Lock | None = None
        self._keepalive: asyncio.Task[None] | None = None
        self._tracer = trace.get_tracer(__name__, tracer_provider=tracer_provider)

    @classmethod
    def from_settings(cls, settings: PlatformSettings) -> JanusController | None:
        """The tenant's controller, or None when meetings are off or no Janus is configured."""
        if not settings.meetings_enabled or not settings.janus_url:
            return None
        admin_url = settings.janus_admin_url or settings.janus_url.rstrip("/").removesuffix("/janus") + "/admin"
        return cls(
            settings.janus_url,
            admin_url,
            settings.janus_api_secret.get_secret_value(),
            settings.janus_admin_secret.get_secret_value(),
        )

    async def close(self) -> None:
        if self._keepalive is not None:
            self._keepalive.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._keepalive
            self._keepalive = None
        if self._session_id is not None and self._http is not None:
            with contextlib.suppress(Exception):
                await self._post(f"{self.url}/{self._session_id}", {"janus": "destroy"})
        self._session_id = self._handle_id = None
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    # ---- rooms ---------------------------------------------------------------------------------

    async def ensure_room(
        self,
        room_id: int,
        *,
        secret: str,
        max_publishers: int,
        description: str,
        pin: str | None = None,
        tokens: Iterable[str] = (),
    ) -> bool:
        """Create the room unless it exists (then: no-op); True if it was created. Entry needs a token."""
        with self._span("janus ensure_room", attributes={"janus.room": room_id}) as span:
            if await self.room_exists(room_id):
                span.set_attribute("janus.created", False)
                return False
            body: dict[str, Any] = {
                "request": "create",
                "room": room_id,
                "admin_key": self._admin_secret,
                "secret": secret,
                "description": description[:100],
                "publishers": max_publishers,
                "allowed": list(tokens),
                "is_private": True,
                "permanent": False,
                "bitrate": 512_000,
                "fir_freq": 10,
                "notify_joining": True,
            }
            if pin:
                body["pin"] = pin
            try:
                await self._videoroom(body)
            except MeetingServerError as error:
                if error.janus_code != ROOM_EXISTS:  # a concurrent ensure_room won
                    raise
                span.set_attribute("janus.created", False)
                return False
            span.set_attribute("janus.created", True)
            return True

    async def room_exists(self, room_id: int) -> bool:
        data = await self._videoroom({"request": "exists", "room": room_id})
        return bool(data.get("exists"))

    async def destroy_room(self, room_id: int, *, secret: str) -> bool:
        """Destroy the room (its participants are disconnected); False if it did not exist."""
        with self._span("janus destroy_room", attributes={"janus.room": room_id}):
            try:
                await self._videoroom({"request": "destroy", "room": room_id, "secret": secret})
            except MeetingServerError as error:
                if error.janus_code == ROOM_NOT_FOUND:
                    return False
                raise
            return True

    async def list_rooms(self) -> list[Room]:
        data = await self._videoroom({"request": "list", "admin_key": self._admin_secret})
        return [
            Room(int(r["room"]), str(r.get("description", "")), int(r.get("num_participants", 0)),
                 int(r.get("max_publishers", 0)))
            for r in data.get("list", [])
        ]  # fmt: skip

    async def allow_tokens(self, room_id: int, *, secret: str, tokens: Iterable[str], add: bool = True) -> None:
        """Add tokens to (or remove them from) the room's `allowed` list and Janus's stored tokens."""
        tokens = list(tokens)
        if not tokens:
            return
        action = "add" if add else "remove"
        with self._span(f"janus allowed {action}", attributes={"janus.room": room_id}):
            if add:
                for token in tokens:
                    await self._admin({"janus": "add_token", "token": token, "plugins": [VIDEOROOM]})
            await self._videoroom(
                {"request": "allowed", "room": room_id, "secret": secret, "action": action, "allowed": tokens}
            )
            if not add:
                for token in tokens:
                    await self._remove_stored_token(token)

    async def revoke_tokens(self, tokens: Iterable[str]) -> None:
        """Forget stored tokens (for rooms already gone): their holders can no longer use the Janus API."""
        for token in tokens:
            await self._remove_stored_token(token)

    async def _remove_stored_token(self, token: str) -> None:
        with contextlib.suppress(MeetingServerError):  # not stored (Janus restarted since): nothing to revoke
            await self._admin({"janus": "remove_token", "token": token})

    async def list_participants(self, room_id: int) -> list[Participant]:
        data = await self._videoroom({"request": "listparticipants", "room": room_id})
        return [
            Participant(int(p["id"]), str(p.get("display", "")), bool(p.get("publisher")), p.get("talking"))
            for p in data.get("participants", [])
        ]

    async def kick(self, room_id: int, *, secret: str, participant_id: int) -> bool:
        """Disconnect a participant; False if they are not in the room."""
        attributes = {"janus.room": room_id, "janus.participant": participant_id}
        with self._span("janus kick", attributes=attributes):
            try:
                await self._videoroom({"request": "kick", "room": room_id, "secret": secret, "id": participant_id})
            except MeetingServerError as error:
                if error.janus_code == NO_SUCH_FEED:
                    return False
                raise
            return True

    async def moderate(self, room_id: int, *, secret: str, participant_id: int, mid: str, mute: bool) -> None:
        """Mute (or unmute) one stream (`mid`) a participant publishes: Janus stops relaying it."""
        attributes = {"janus.room": room_id, "janus.participant": participant_id, "janus.mute": mute}
        with self._span("janus moderate", attributes=attributes):
            await self._videoroom(
                {"request": "moderate", "room": room_id, "secret": secret, "id": participant_id, "mid": mid,
                 "mute": mute}
            )  # fmt: skip

    async def published_streams(self, room_id: int, participant_id: int) -> list[dict[str, Any]]:
        """The streams (type, mid) a participant publishes, read through the admin API's handle info."""
        for handle in await self._handles():
            plugin = handle.get("plugin_specific", {})
            if (
                plugin.get("type") == "publisher"
                and plugin.get("room") == room_id
                and plugin.get("id") == participant_id
            ):
                return list(plugin.get("streams", []))
        return []

    async def mute_token(self, room_id: int, *, secret: str, token: str, kind: str, mute: bool) -> int:
        """Mute (or unmute) every `kind` ("audio"/"video") stream published in the room by holders of
        ``token``; returns how many streams changed."""
        changed = 0
        with self._span("janus mute", attributes={"janus.room": room_id, "janus.kind": kind}):
            for handle in await self._handles():
                plugin = handle.get("plugin_specific", {})
                if handle.get("token") != token or plugin.get("type") != "publisher" or plugin.get("room") != room_id:
                    continue
                for stream in plugin.get("streams", []):
                    if stream.get("type") == kind:
                        await self.moderate(
                            room_id, secret=secret, participant_id=int(plugin["id"]), mid=str(stream["mid"]), mute=mute
                        )
                        changed += 1
        return changed

    async def disconnect(self, tokens: Iterable[str]) -> int:
        """Destroy every Janus session opened with one of ``tokens`` (their media stops at once); returns how
        many. With the tokens revoked first, the holders cannot open new ones."""
        wanted = set(tokens)
        if not wanted:
            return 0
        with self._span("janus disconnect"):
            sessions = {h["session_id"] for h in await self._handles() if h.get("token") in wanted}
            for session_id in sessions:
                with contextlib.suppress(MeetingServerError):  # already gone
                    await self._admin({"janus": "destroy_session", "session_id": session_id})
            return len(sessions)

    async def _handles(self) -> list[dict[str, Any]]:
        """The admin API's info of every handle (with `session_id`, `token`, `plugin_specific`)."""
        found: list[dict[str, Any]] = []
        for session_id in (await self._admin({"janus": "list_sessions"})).get("sessions", []):
            try:
                handles = (await self._admin({"janus": "list_handles", "session_id": session_id})).get("handles", [])
            except MeetingServerError:
                continue  # the session ended meanwhile
            for handle_id in handles:
                try:
                    reply = await self._admin(
                        {"janus": "handle_info", "session_id": session_id, "handle_id": handle_id}
                    )
                except MeetingServerError:
                    continue
                found.append({"session_id": session_id, **reply.get("info", {})})
        return found

    async def info(self) -> dict[str, Any]:
        response = await self._post(f"{self.url}/info", None, method="GET")
        return response

    # ---- transport -----------------------------------------------------------------------------

    def _span(
        self, name: str, attributes: dict[str, Any] | None = None, kind: trace.SpanKind = trace.SpanKind.INTERNAL
    ) -> AbstractContextManager[trace.Span]:
        """A span in the current trace (the request's or the task's); CLIENT for one call to Janus."""
        return self._tracer.start_as_current_span(name, kind=kind, attributes=attributes)

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self._timeout)
        return self._http

    def _guard(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    async def _videoroom(self, body: dict[str, Any]) -> dict[str, Any]:
        """One synchronous videoroom request on our handle; the plugin's `data`, or MeetingServerError."""
        with self._span(f"janus videoroom {body['request']}", kind=trace.SpanKind.CLIENT) as span:
            for attempt in (1, 2):
                session_id, handle_id = await self._ensure_handle()
                try:
                    reply = await self._post(f"{self.url}/{session_id}/{handle_id}", {"janus": "message", "body": body})
                except _SessionLost:
                    if attempt == 2:
                        raise MeetingServerUnavailable("the meeting server lost its session twice") from None
                    span.add_event("janus session lost; opening a new one")
                    self._forget_session(session_id)
                    continue
                data: dict[str, Any] = reply.get("plugindata", {}).get("data", {})
                if "error_code" in data:
                    code = int(data["error_code"])
                    raise MeetingServerError(
                        f"the meeting server refused {body['request']}: {self._scrub(str(data.get('error', '')))}",
                        code,
                    )
                return data
        raise AssertionError("unreachable")

    async def _admin(self, body: dict[str, Any]) -> dict[str, Any]:
        session_id = body.pop("session_id", None)
        handle_id = body.pop("handle_id", None)
        path = "/".join(str(p) for p in (self.admin_url, session_id, handle_id) if p is not None)
        with self._span(f"janus admin {body['janus']}", kind=trace.SpanKind.CLIENT):
            return await self._post(path, {**body, "admin_secret": self._admin_secret}, secret_field=None)

    async def _ensure_handle(self) -> tuple[int, int]:
        async with self._guard():
            if self._session_id is None or self._handle_id is None:
                created = await self._post(self.url, {"janus": "create"})
                session_id = int(created["data"]["id"])
                attached = await self._post(f"{self.url}/{session_id}", {"janus": "attach", "plugin": VIDEOROOM})
                self._session_id, self._handle_id = session_id, int(attached["data"]["id"])
                self._start_keepalive()
            return self._session_id, self._handle_id

    def _forget_session(self, session_id: int) -> None:
        if self._session_id == session_id:
            self._session_id = self._handle_id = None

    def _start_keepalive(self) -> None:
        if self._keepalive is None or self._keepalive.done():
            self._keepalive = asyncio.get_running_loop().create_task(self._keep_alive(), name="janus-keepalive")

    async def _keep_alive(self) -> None:
        while True:
            await asyncio.sleep(self._keepalive_seconds)
            session_id = self._session_id
            if session_id is None:
                continue
            try:
                await self._post(f"{self.url}/{session_id}", {"janus": "keepalive"})
            except _SessionLost:
                self._forget_session(session_id)
            except DomainError as error:
                log.warning("janus keepalive failed: %s", error.message)

    async def _post(
        self,
        url: str,
        body: dict[str, Any] | None,
        *,
        method: str = "POST",
        secret_field: str | None = "apisecret",  # noqa: S107 - a field name
    ) -> dict[str, Any]:
        """Send one request; the reply, or MeetingServerUnavailable / MeetingServerError / _SessionLost."""
        payload = None
        if body is not None:
            payload = {**body, "transaction": secrets.token_hex(8)}
            if secret_field:
                payload[secret_field] = self._api_secret
        try:
            response = await self._client().request(method, url, json=payload)
            reply: dict[str, Any] = response.json()
        except (httpx.TransportError, ValueError) as error:
            self._session_id = self._handle_id = None  # a restarted Janus will not know it
            raise MeetingServerUnavailable(f"the meeting server is unreachable ({type(error).__name__})") from None
        if reply.get("janus") == "error":
            error_body = reply.get("error", {})
            code = int(error_body.get("code", 0))
            if code in (SESSION_NOT_FOUND, HANDLE_NOT_FOUND):
                raise _SessionLost()
            raise MeetingServerError(f"the meeting server refused: {self._scrub(str(error_body.get('reason')))}", code)
        return reply

    def _scrub(self, text: str) -> str:
        for secret in (self._api_secret, self._admin_secret):
            if secret:
                text = text.replace(secret, "***")
        return text[:200]
