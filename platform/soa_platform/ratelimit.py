"""Per-user rate limits on the `limits` library: Redis storage shared by all api replicas, memory
storage in the embedded default (one process)."""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

from soa_platform.errors import RateLimited


class RateLimiter:
    def __init__(self, rules: str, redis_url: str | None) -> None:
        self.items: list[RateLimitItem] = parse_many(rules) if rules else []
        self.storage: Storage = (
            RedisStorage(f"async+{redis_url}", implementation="redispy", key_prefix="soa-rl")
            if redis_url
            else MemoryStorage()
        )
        self.strategy = MovingWindowRateLimiter(self.storage)

    async def hit(self, scope: str, identity: str) -> None:
        """Count one action; refuse with Retry-After once any rule is exceeded."""
        for item in self.items:
            if not await self.strategy.hit(item, scope, identity):
                stats = await self.strategy.get_window_stats(item, scope, identity)
                raise RateLimited(max(1, math.ceil(stats.reset_time - time.time())))
