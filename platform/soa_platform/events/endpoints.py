"""WebSocket `/v1/events`: the signed-in user's real-time events, resumable by sequence number.

Authentication: the `access_token` query parameter (browsers cannot set headers on a WebSocket) or an
`Authorization: Bearer` header. The socket is accepted and then closed with 4401 (4403 if the account
is refused), because a refusal before accept reaches a browser only as an anonymous 1006. The socket
is closed with 4401 when the token expires, so the client reconnects with a fresh one. An invalid
`last_seq` (not an integer >= 0) is refused before accept (HTTP 403, FastAPI's validation).

Server frames (JSON text):
    {"type": "hello", "latest_seq": n}              first; n is the last seq of the user's stream
    {"seq": n, "type": "message.created", ...}      each event, seq increasing by one
    {"type": "resync_required", "latest_seq": n}    events were lost to this client: reload state
    {"type": "pong"}                                answer to the client's {"type": "ping"}
Close codes: 4401/4403 as above; 4408 the client read too slowly (reconnect with the last seq seen);
1012 the server is restarting and 1013 events are unavailable for now (reconnect with the last seq).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import jwt
import orjson
from fastapi import APIRouter, Query, WebSocket, WebSocketDisconnect

from soa_platform.dependencies import authenticate, websocket_platform
from soa_platform.errors import DomainError
from soa_platform.events.bus import EventStream, Item, ResyncRequired, Subscription, SubscriptionLagged

log = logging.getLogger(__name__)

router = APIRouter(tags=["events"])

CLOSE_TOKEN_EXPIRED = 4401
CLOSE_TOO_SLOW = 4408
CLOSE_RESTARTING = 1012
CLOSE_UNAVAILABLE = 1013

SendFrame = Callable[[dict[str, Any]], Awaitable[None]]


@router.websocket("/v1/events")
async def events(
    websocket: WebSocket,
    last_seq: Annotated[int | None, Query(ge=0, description="the last seq this client received")] = None,
    access_token: Annotated[str | None, Query(description="for browsers; others send a Bearer header")] = None,
) -> None:
    """The user's events after `last_seq` (or from now), then live ones; see the module docstring."""
    platform = websocket_platform(websocket)
    token = _bearer(websocket) or access_token
    await websocket.accept()
    try:
        # a short unit of work: the socket may stay open for hours and must not hold a connection
        async with platform.db.unit_of_work() as uow:
            user = await authenticate(platform, uow, token)
    except DomainError as error:
        await _close(websocket, 4000 + error.status_code, error.message)  # 4401, 4403: the HTTP status
        return
    bus = platform.events
    if not isinstance(bus, EventStream):
        raise TypeError("Platform.events must be an EventStream (a bus with subscribe)")
    seconds_left = _seconds_left(token, platform.settings.oidc_leeway_seconds)
    try:
        async with bus.subscribe(user.id, last_seq) as subscription:
            code, reason = await _serve(websocket, subscription, seconds_left)
    except Exception:
        log.warning("the event stream of user %s failed", user.id, exc_info=True)
        code, reason = CLOSE_UNAVAILABLE, "events are unavailable; reconnect with last_seq"
    if code:
        await _close(websocket, code, reason)


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    with contextlib.suppress(RuntimeError, WebSocketDisconnect):  # the client may have gone already
        await websocket.close(code=code, reason=reason[:120])  # a close reason has at most 123 bytes


def _bearer(websocket: WebSocket) -> str | None:
    scheme, _, credentials = websocket.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return credentials.strip() or None


def _seconds_left(token: str | None, leeway: float) -> float | None:
    """Until the token stops being accepted (its expiry plus the verification leeway)."""
    try:
        # the token was verified just now; only its expiry is read here
        expires = jwt.decode(token or "", options={"verify_signature": False}).get("exp")
    except jwt.PyJWTError:
        return None
    return max(float(expires) + leeway - time.time(), 0.0) if isinstance(expires, int | float) else None


async def _serve(websocket: WebSocket, subscription: Subscription, seconds_left: float | None) -> tuple[int, str]:
    """Send events until the client leaves, lags, the bus stops or the token expires; the close to send
    (code 0: the client is gone)."""
    send_lock = asyncio.Lock()

    async def send(frame: dict[str, Any]) -> None:
        async with send_lock:  # events and pongs come from two tasks
            await websocket.send_text(orjson.dumps(frame).decode())

    pump = asyncio.create_task(_pump(send, subscription))
    client = asyncio.create_task(_answer_client(websocket, send))
    lagged = asyncio.create_task(subscription.lagged.wait())
    try:
        done, _ = await asyncio.wait({pump, client, lagged}, timeout=seconds_left, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (pump, client, lagged):
            task.cancel()
        await asyncio.gather(pump, client, lagged, return_exceptions=True)
    if client in done:
        return 0, ""
    if lagged in done:
        return CLOSE_TOO_SLOW, "too slow; reconnect with last_seq"
    if pump in done:
        return pump.result()
    return CLOSE_TOKEN_EXPIRED, "token expired"


async def _pump(send: SendFrame, subscription: Subscription) -> tuple[int, str]:
    await send({"type": "hello", "latest_seq": subscription.latest_seq})
    try:
        async for item in subscription:
            await send(_frame(item))
    except SubscriptionLagged:
        return CLOSE_TOO_SLOW, "too slow; reconnect with last_seq"
    except WebSocketDisconnect:
        return 0, ""
    return CLOSE_RESTARTING, "server restarting; reconnect with last_seq"


def _frame(item: Item) -> dict[str, Any]:
    if isinstance(item, ResyncRequired):
        return {"type": "resync_required", "latest_seq": item.latest_seq}
    return {**item.event, "seq": item.seq}


async def _answer_client(websocket: WebSocket, send: SendFrame) -> None:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        try:
            frame = orjson.loads(message.get("text") or b"null")
        except orjson.JSONDecodeError:
            continue  # clients send only pings; anything else is ignored
        if isinstance(frame, dict) and frame.get("type") == "ping":
            await send({"type": "pong"})
