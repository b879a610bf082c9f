"""The event bus of a real deployment: per-user Redis streams plus one pub/sub channel per tenant, so an
event published by any api replica reaches the user's sockets on every replica.

Keys: `soa:{<tenant>}:events:<user id>` (a stream whose entry ids are `<seq>-0`) and
`soa:{<tenant>}:events:<user id>:seq` (the counter); channel `soa:{<tenant>}:events`. The braces are
a Redis Cluster hash tag: all of a tenant's keys share a slot, so one script may touch them all.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from contextlib import AbstractAsyncContextManager
from typing import Any, cast

import orjson
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff

from soa_platform.events.subscription import DEFAULT_QUEUE_SIZE, Envelope, SubscriberRegistry, Subscription

log = logging.getLogger(__name__)

LISTEN_POLL_SECONDS = 1.0
START_TIMEOUT_SECONDS = 10.0
DEFAULT_STREAM_TTL_SECONDS = 7 * 24 * 3600

# Numbering, storing and announcing in one script: atomic, so the channel carries each user's events
# in seq order, and a subscriber that reads a seq from the channel finds it in the stream.
# Only the stream expires: a counter that restarted at 1 would look like old events to open sockets.
# KEYS: counter and stream of each recipient, in pairs. ARGV: maxlen, ttl ms, channel, event JSON,
# then the recipients' user ids in KEYS order.
PUBLISH_SCRIPT = """
local maxlen, ttl, channel, event = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local seqs = {}
for i = 1, #KEYS, 2 do
  local seq = redis.call('INCR', KEYS[i])
  redis.call('XADD', KEYS[i + 1], 'MAXLEN', '~', maxlen, seq .. '-0', 'e', event)
  redis.call('PEXPIRE', KEYS[i + 1], ttl)
  seqs[#seqs + 1] = '"' .. ARGV[4 + (i + 1) / 2] .. '":' .. seq
end
redis.call('PUBLISH', channel, '{"seqs":{' .. table.concat(seqs, ',') .. '},"event":' .. event .. '}')
return #seqs
"""


class RedisEventBus:
    """Per-user event streams in Redis with live fan-out to every api replica of the tenant.

    `start()` once per process (it subscribes to the tenant's channel; redis-py reconnects it with
    backoff for as long as Redis is away, and every subscription then catches up from its stream);
    `stop()` at shutdown. The stream of a user without events for `stream_ttl_seconds` expires
    (its counter stays); a client that comes back later gets `resync_required`.
    """

    def __init__(
        self,
        redis_url: str,
        stream_length: int,
        tenant: str,
        *,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        stream_ttl_seconds: int = DEFAULT_STREAM_TTL_SECONDS,
    ) -> None:
        self.stream_length = stream_length
        self.prefix = f"soa:{{{tenant}}}:events"
        self._ttl_ms = stream_ttl_seconds * 1000
        # commands fail after a few quick retries: a publish is then logged by the unit of work
        self._redis = Redis.from_url(
            redis_url,
            retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), retries=3),
            socket_connect_timeout=2,
            socket_timeout=5,
            health_check_interval=30,
        )
        # the listener's connection retries for ever; redis-py re-subscribes after each reconnect
        self._listener_redis = Redis.from_url(
            redis_url,
            retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), retries=-1),
            socket_connect_timeout=2,
            socket_timeout=5,
            socket_keepalive=True,
            health_check_interval=10,
        )
        self._publish_script = self._redis.register_script(PUBLISH_SCRIPT)
        self._subscribers = SubscriberRegistry(self, queue_size)
        self._subscribed = asyncio.Event()
        self._listener: asyncio.Task[None] | None = None

    @property
    def channel(self) -> str:
        return self.prefix

    def counter_key(self, user_id: int) -> str:
        return f"{self.prefix}:{user_id}:seq"

    def stream_key(self, user_id: int) -> str:
        return f"{self.prefix}:{user_id}"

    async def start(self) -> None:
        """Subscribe to the tenant's channel; raise if Redis does not answer within 10 s."""
        if self._listener is not None:
            return
        self._subscribed.clear()
        self._listener = asyncio.create_task(self._listen(), name="soa-events-listener")
        self._listener.add_done_callback(_report_listener_end)
        subscribed = asyncio.create_task(self._subscribed.wait())
        done, _ = await asyncio.wait(
            {self._listener, subscribed}, timeout=START_TIMEOUT_SECONDS, return_when=asyncio.FIRST_COMPLETED
        )
        if subscribed not in done:
            subscribed.cancel()
            await self.stop()
            raise ConnectionError(f"the event bus could not subscribe to Redis within {START_TIMEOUT_SECONDS} s")

    async def stop(self) -> None:
        """End every subscription, stop listening and close the connections."""
        self._subscribers.close_all()
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.cancel()
            try:
                await listener
            except asyncio.CancelledError:
                pass
            except Exception:
                log.exception("the event listener had failed")
        await self._redis.aclose()
        await self._listener_redis.aclose()

    async def publish(self, user_ids: Iterable[int], event: dict[str, Any]) -> None:
        recipients = list(dict.fromkeys(int(user_id) for user_id in user_ids))
        if not recipients:
            return
        keys: list[str] = []
        for user_id in recipients:
            keys += [self.counter_key(user_id), self.stream_key(user_id)]
        args: list[bytes | str | int] = [
            self.stream_length,
            self._ttl_ms,
            self.channel,
            orjson.dumps(event),
            *recipients,
        ]
        await self._publish_script(keys=keys, args=args)

    def subscribe(self, user_id: int, last_seq: int | None = None) -> AbstractAsyncContextManager[Subscription]:
        if self._listener is None:
            raise RuntimeError("start() the event bus before subscribing")
        return self._subscribers.subscribe(user_id, last_seq)

    async def latest_seq(self, user_id: int) -> int:
        value = await self._redis.get(self.counter_key(user_id))
        return int(value) if value is not None else 0

    async def read_after(self, user_id: int, after_seq: int, limit: int) -> list[Envelope]:
        # without decode_responses, ids and field names come back as bytes
        entries = cast(
            list[tuple[bytes, dict[bytes, bytes]]],
            await self._redis.xrange(self.stream_key(user_id), min=f"{after_seq + 1}-0", count=limit),
        )
        return [Envelope(int(entry_id.split(b"-", 1)[0]), orjson.loads(fields[b"e"])) for entry_id, fields in entries]

    async def _listen(self) -> None:
        async with self._listener_redis.pubsub() as pubsub:
            await pubsub.subscribe(self.channel)
            while True:
                message = await pubsub.get_message(timeout=LISTEN_POLL_SECONDS)
                if message is None:
                    continue
                if message["type"] == "subscribe":
                    # the first subscription, or a re-subscription after Redis was away: what was
                    # published meanwhile is only in the streams, so every subscription re-reads its own
                    self._subscribed.set()
                    self._subscribers.check_stored_all()
                elif message["type"] == "message":
                    self._dispatch(message["data"])

    def _dispatch(self, data: bytes) -> None:
        try:
            payload = orjson.loads(data)
            seqs: dict[str, int] = payload["seqs"]
            event: dict[str, Any] = payload["event"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            log.warning("ignoring a malformed message on %s", self.channel)
            return
        for user_id, seq in seqs.items():
            if self._subscribers.has_subscribers(int(user_id)):
                self._subscribers.deliver(int(user_id), Envelope(seq, event))


def _report_listener_end(task: asyncio.Task[None]) -> None:
    # only connection errors are retried; anything else ends live delivery on this replica: say so at once
    if not task.cancelled() and (error := task.exception()) is not None:
        log.error("the event listener stopped; live events no longer reach this replica", exc_info=error)
