"""The app for the Celery command line: `celery -A soa_platform.worker.celery_app worker|beat`.

Built on first access from the environment (`SOA_*`), so importing this module has no side effects.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from soa_platform.settings import PlatformSettings
from soa_platform.worker.app import create_celery
from soa_platform.worker.dispatcher import CeleryDispatcher

__all__ = ["CeleryDispatcher", "create_celery", "get_app"]


@cache
def get_app() -> Any:
    """The process's Celery app, configured from the environment."""
    return create_celery(PlatformSettings())


def __getattr__(name: str) -> Any:
    if name == "app":
        return get_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
