"""Declaring tasks: Celery's `shared_task` behind a typed decorator (Celery ships no type hints)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celery import shared_task  # type: ignore[import-untyped,unused-ignore]


def task(name: str, **options: Any) -> Callable[[Callable[..., Any]], Any]:
    """`shared_task(name=name, **options)`: registered on every app `create_celery` builds."""

    def declare(function: Callable[..., Any]) -> Any:
        return shared_task(name=name, **options)(function)

    return declare
