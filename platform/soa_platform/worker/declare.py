"""Declaring tasks: Celery's `shared_task` behind a typed decorator (Celery ships no type hints)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celery import shared_task  # type: ignore[import-untyped,unused-ignore]
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, ProgrammingError

# Worth a retry: the database or a connection to it failed (asyncpg's deadlock and serialization
# failures arrive as plain DBAPIError). Not worth one: errors a retry would only repeat.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (DBAPIError, OSError)
PERMANENT_ERRORS: tuple[type[Exception], ...] = (IntegrityError, ProgrammingError, DataError)


def task(name: str, **options: Any) -> Callable[[Callable[..., Any]], Any]:
    """`shared_task(name=name, **options)`: registered on every app `create_celery` builds."""

    def declare(function: Callable[..., Any]) -> Any:
        return shared_task(name=name, **options)(function)

    return declare
