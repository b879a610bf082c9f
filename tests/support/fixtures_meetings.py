"""pytest fixtures for meetings: the media veth, a real Janus and a real coturn (session-scoped, lazy).

Registered in tests/conftest.py (``pytest_plugins``). `janus` is restarted before a test if an earlier
test killed it, so a kill/restart test leaves nothing broken behind.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.janus_server import CoturnServer, JanusServer, media_interface


@pytest.fixture(scope="session")
def media_address() -> Iterator[str]:
    """127.0.0.2 on the veth `jv0` (created for the session; needs root)."""
    with media_interface() as address:
        yield address


@pytest.fixture(scope="session")
def janus_server(media_address: str) -> Iterator[JanusServer]:
    server = JanusServer.launch()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def janus(janus_server: JanusServer) -> JanusServer:
    """The session's Janus, running (started again if a previous test killed it)."""
    janus_server.start()
    return janus_server


@pytest.fixture(scope="session")
def coturn(media_address: str) -> Iterator[CoturnServer]:
    server = CoturnServer.launch()
    try:
        yield server
    finally:
        server.close()
