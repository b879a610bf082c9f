"""`soa up`'s Janus: configured in the data dir with kept secrets, usable by the platform's controller."""

from __future__ import annotations

from pathlib import Path

import pytest

from soa_platform.meetings import embedded_janus as module
from soa_platform.meetings.embedded_janus import embedded_janus
from soa_platform.meetings.janus import JanusController
from soa_platform.settings import PlatformSettings
from tests.support.processes import ManagedProcess, wait_for_http

KEYS = {"SOA_SIGNING_KEY": "k" * 48, "SOA_SESSION_KEY": "s" * 48, "SOA_ENVIRONMENT": "embedded"}


async def test_the_embedded_janus_starts_and_the_platform_can_use_it(tmp_path: Path) -> None:
    janus = embedded_janus(tmp_path, "127.0.0.1")
    assert janus is not None
    assert (tmp_path / "secrets" / "janus-api-secret").stat().st_mode & 0o777 == 0o600
    settings = PlatformSettings.model_validate(
        {k.removeprefix("SOA_").lower(): v for k, v in {**KEYS, **janus.env}.items()}
    )
    with ManagedProcess(janus.config.command(), tmp_path / "janus.log"):
        wait_for_http(f"{janus.config.http_url()}/info")
        controller = JanusController.from_settings(settings)
        assert controller is not None
        try:
            assert await controller.ensure_room(42, secret="s", max_publishers=2, description="embedded") is True
        finally:
            await controller.close()
    again = embedded_janus(tmp_path, "127.0.0.1")
    assert again is not None
    assert again.config.api_secret == janus.config.api_secret  # generated once, kept


def test_without_janus_meetings_are_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no janus binary here
    assert embedded_janus(tmp_path, "127.0.0.1") is None
    assert "meetings are off" in module.ABSENT_MESSAGE
    off = PlatformSettings.model_validate({"signing_key": "k" * 48, "session_key": "s" * 48, "environment": "test"})
    assert JanusController.from_settings(off) is None
