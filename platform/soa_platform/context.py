"""What one platform process holds: settings, database, token service, event bus, rate limiter and
the task dispatcher and the object store. Built once per process and stored on the app."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from soa_platform.db import Database
from soa_platform.events.bus import EventStream
from soa_platform.files.storage import Storage
from soa_platform.identity.cache import UserCache
from soa_platform.identity.tokens import TokenService
from soa_platform.meetings.janus import JanusController
from soa_platform.ratelimit import RateLimiter
from soa_platform.settings import PlatformSettings


class TaskDispatcher(Protocol):
    async def send(self, task_name: str, *args: Any) -> None:
        """Enqueue a Celery task (call only after the data it refers to is committed)."""


@dataclass
class Platform:
    settings: PlatformSettings
    db: Database
    tokens: TokenService
    events: EventStream
    limiter: RateLimiter
    tasks: TaskDispatcher
    storage: Storage | None = None  # None: files are disabled or not configured
    meetings: JanusController | None = None  # None: meetings are disabled or no Janus is configured
    user_cache: UserCache = field(default_factory=UserCache)
