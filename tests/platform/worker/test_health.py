"""`soa healthcheck worker|beat`: healthy while the process's heartbeat file is fresh."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from soa_platform.settings import PlatformSettings
from soa_platform.worker import healthcheck
from tests.platform.worker.conftest import KEY


def _settings(tmp_path: Path) -> PlatformSettings:
    return PlatformSettings(
        environment="test",
        signing_key=KEY,
        session_key=KEY,
        worker_heartbeat_file=str(tmp_path / "worker.heartbeat"),
        beat_heartbeat_file=str(tmp_path / "beat.heartbeat"),
    )


@pytest.mark.parametrize("kind", ["worker", "beat"])
def test_a_fresh_heartbeat_is_healthy(tmp_path: Path, kind: str) -> None:
    (tmp_path / f"{kind}.heartbeat").touch()

    assert healthcheck(kind, _settings(tmp_path), max_age_seconds=60) == 0  # type: ignore[arg-type]


def test_a_stale_heartbeat_is_unhealthy_with_its_age(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    heartbeat = tmp_path / "worker.heartbeat"
    heartbeat.touch()
    old = time.time() - 120
    os.utime(heartbeat, (old, old))

    assert healthcheck("worker", _settings(tmp_path), max_age_seconds=60) == 1
    reason = capsys.readouterr().err.strip()
    assert reason.startswith("unhealthy: worker heartbeat is 120s old (limit 60s)")
    assert "\n" not in reason


def test_a_missing_heartbeat_is_unhealthy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert healthcheck("beat", _settings(tmp_path)) == 1
    assert capsys.readouterr().err.strip() == f"unhealthy: no beat heartbeat file at {tmp_path / 'beat.heartbeat'}"
