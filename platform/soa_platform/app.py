"""The FastAPI application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from soa_platform import __version__
from soa_platform.context import Platform
from soa_platform.errors import DomainError
from soa_platform.files.storage import StorageError

log = logging.getLogger(__name__)

# PostgreSQL's "invalid byte sequence": a NUL character, which no text column can hold
CHARACTER_NOT_IN_REPERTOIRE = "22021"

Lifespan = Callable[[], Awaitable[None]]


def create_app(
    platform: Platform, *, on_startup: list[Lifespan] | None = None, on_shutdown: list[Lifespan] | None = None
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        for start in on_startup or []:
            await start()
        try:
            yield
        finally:
            for stop in on_shutdown or []:
                await stop()
            await platform.db.dispose()

    app = FastAPI(
        title=f"SOA — {platform.settings.display_name}",
        version=__version__,
        description="Messaging, files and meetings of one tenant. Every endpoint needs a bearer token except "
        "the health checks and `/v1/auth/config`.",
        lifespan=lifespan,
    )
    app.state.platform = platform
    _add_error_handlers(app)
    _document_validation_errors(app)
    _add_routers(app)
    return app


def _add_routers(app: FastAPI) -> None:
    from soa_platform.admin.endpoints import router as admin_router
    from soa_platform.events.endpoints import router as events_router
    from soa_platform.files.blob_endpoints import router as blob_router
    from soa_platform.files.endpoints import router as files_router
    from soa_platform.health import router as health_router
    from soa_platform.identity.endpoints import router as identity_router
    from soa_platform.meetings.endpoints import router as meetings_router
    from soa_platform.messaging.endpoints import router as messaging_router

    routers = (health_router, identity_router, messaging_router, events_router, admin_router, blob_router, files_router)
    for router in (*routers, meetings_router):
        app.include_router(router)


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": code, "detail": message, **extra}, status_code=status, headers=headers)


# the body `validation_error` sends, in place of FastAPI's default 422 schema ({"detail": [problems]})
VALIDATION_ERROR_SCHEMA = {
    "title": "HTTPValidationError",
    "type": "object",
    "required": ["error", "detail", "problems"],
    "properties": {
        "error": {"type": "string", "const": "invalid_payload"},
        "detail": {"type": "string"},
        "problems": {"type": "array", "items": {"$ref": "#/components/schemas/ValidationError"}},
    },
}


def _document_validation_errors(app: FastAPI) -> None:
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schemas = build().get("components", {}).get("schemas", {})
            if "HTTPValidationError" in schemas:
                schemas["HTTPValidationError"] = VALIDATION_ERROR_SCHEMA
        return app.openapi_schema or build()

    app.openapi = openapi  # type: ignore[method-assign]


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def domain_error(_request: Request, error: DomainError) -> JSONResponse:
        return _error(error.status_code, error.code, error.message, error.headers)

    @app.exception_handler(StorageError)
    async def storage_unavailable(_request: Request, error: StorageError) -> JSONResponse:
        log.warning("object store failure: %s", error)  # never holds credentials or signed URLs
        return _error(503, "storage_unavailable", "the file store is unavailable; try again later")

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, error: RequestValidationError) -> JSONResponse:
        # never echo the submitted values back: they may hold a password
        problems = [
            {"loc": list(item.get("loc", ())), "msg": item.get("msg", ""), "type": item.get("type", "")}
            for item in error.errors()
        ]
        return _error(422, "invalid_payload", "the request does not match the schema", problems=problems)

    @app.exception_handler(DBAPIError)
    async def unstorable_text(_request: Request, error: DBAPIError) -> JSONResponse:
        if getattr(error.orig, "sqlstate", None) == CHARACTER_NOT_IN_REPERTOIRE:
            return _error(422, "invalid_payload", "text must not contain NUL characters", problems=[])
        raise error  # any other database failure is a 500 (below)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, error: StarletteHTTPException) -> JSONResponse:
        return _error(error.status_code, "http_error", str(error.detail), dict(error.headers or {}))

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, error: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _error(500, "internal_error", "internal error; the operators have been told")
