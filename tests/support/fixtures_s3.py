"""pytest fixtures for real S3 protocol servers: moto and the JuiceFS gateway (DESIGN.md §6).

Registered in tests/conftest.py (``pytest_plugins``). Each server starts once per session, lazily,
and stops at session end; tests keep apart by using a bucket of their own (`fresh_bucket`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.support.s3_servers import JuiceFSGateway, MotoS3Server, S3Endpoint


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[S3Endpoint]:
    """moto's S3 on a free loopback port (accepts any credential, checks no presigned signature)."""
    server = MotoS3Server()
    try:
        yield server.start()
    finally:
        server.close()


@pytest.fixture(scope="session")
def juicefs_s3() -> Iterator[S3Endpoint]:
    """The JuiceFS S3 gateway on a free loopback port, with its root credential (no versioning)."""
    gateway = JuiceFSGateway.launch()
    try:
        yield gateway.endpoint
    finally:
        gateway.close()


def fresh_bucket() -> str:
    """A bucket name no other test uses."""
    return f"soa-test-{uuid.uuid4().hex[:12]}"
