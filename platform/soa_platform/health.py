"""Health checks: the only endpoints besides login discovery that need no token."""

from __future__ import annotations

from fastapi import APIRouter

from soa_platform.dependencies import PlatformDep
from soa_platform.errors import ServiceUnavailable

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {}})
async def readyz(platform: PlatformDep) -> dict[str, str]:
    """Readiness: the database answers."""
    try:
        await platform.db.ping()
    except Exception:
        raise ServiceUnavailable("database unavailable") from None
    return {"status": "ready"}
