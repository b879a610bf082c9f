"""Builds one process's platform objects from settings; `create_api()` is uvicorn's app factory."""

from __future__ import annotations

from fastapi import FastAPI

from soa_platform import metrics
from soa_platform.app import Lifespan, create_app
from soa_platform.context import Platform
from soa_platform.db import Database
from soa_platform.identity.cache import UserCache
from soa_platform.identity.tokens import TokenService
from soa_platform.ratelimit import RateLimiter
from soa_platform.settings import PlatformSettings


def build_platform(settings: PlatformSettings) -> Platform:
    from soa_platform.events.bus import MemoryEventBus, RedisEventBus
    from soa_platform.files.driver import configured_storage
    from soa_platform.meetings.janus import JanusController
    from soa_platform.worker import CeleryDispatcher, create_celery

    redis_url = settings.effective_redis_url
    events = (
        RedisEventBus(redis_url, settings.event_stream_length, settings.tenant)
        if redis_url
        else MemoryEventBus(settings.event_stream_length)
    )
    return Platform(
        settings=settings,
        db=Database(settings.sqlalchemy_url, pool_size=settings.database_pool_size),
        tokens=TokenService(settings),
        events=events,
        limiter=RateLimiter(settings.rate_limit, redis_url),
        tasks=CeleryDispatcher(create_celery(settings)),
        storage=configured_storage(settings),
        meetings=JanusController.from_settings(settings),
        user_cache=UserCache(settings.user_cache_seconds),
    )


def build_api(settings: PlatformSettings, *, tracing: bool = True) -> FastAPI:
    platform = build_platform(settings)
    events = platform.events
    on_shutdown: list[Lifespan] = [events.stop, *([platform.meetings.close] if platform.meetings else [])]
    app = create_app(platform, on_startup=[events.start], on_shutdown=on_shutdown)
    metrics.instrument(app)
    if tracing:
        from soa_platform import telemetry

        telemetry.setup_tracing("soa-api", settings)
        telemetry.instrument_engine(platform.db.engine)
        telemetry.instrument_app(app)
    return app


def create_api() -> FastAPI:
    """uvicorn factory: settings from the environment the tenant chart (or `soa up`) sets."""
    return build_api(PlatformSettings())
