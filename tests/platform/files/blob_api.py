"""A real HTTP server for the local driver's blob routes: uvicorn in a thread on a free loopback port.

The app has the platform's own error handlers and the blob router; its platform object holds only
what those routes use (settings and storage), so these tests do not depend on the files domain.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import uvicorn
from fastapi import FastAPI

from soa_platform.app import _add_error_handlers
from soa_platform.files.blob_endpoints import router
from soa_platform.files.local import LocalStorage
from soa_platform.files.storage import Storage
from soa_platform.settings import PlatformSettings
from tests.support.processes import free_port, wait_until

SIGNING_KEY = "k" * 48
SESSION_KEY = "s" * 48


def base_settings(**overrides: Any) -> PlatformSettings:
    values: dict[str, Any] = {
        "environment": "test",
        "tenant": "files",
        "signing_key": SIGNING_KEY,
        "session_key": SESSION_KEY,
        "database_url": "sqlite+aiosqlite://",
        **overrides,
    }
    return PlatformSettings(**values)


def blob_app(settings: PlatformSettings, storage: Storage) -> FastAPI:
    app = FastAPI()
    _add_error_handlers(app)
    app.state.platform = SimpleNamespace(settings=settings, storage=storage)
    app.include_router(router)
    return app


@contextmanager
def serve_local_storage(root: Path, **overrides: Any) -> Iterator[LocalStorage]:
    """A LocalStorage in `root` whose presigned URLs point at a running server of the blob routes."""
    port = free_port()
    settings = base_settings(
        storage_driver="local", storage_local_dir=str(root), public_url=f"http://127.0.0.1:{port}", **overrides
    )
    storage = LocalStorage(settings)
    with ThreadPoolExecutor(1) as pool:  # callable from sync and async fixtures alike
        pool.submit(asyncio.run, storage.ensure_ready(versioning=False)).result()
    config = uvicorn.Config(
        blob_app(settings, storage), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="blob-api", daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, 10, "the blob api", lambda: None if thread.is_alive() else "exited")
        yield storage
    finally:
        server.should_exit = True
        thread.join(10)
