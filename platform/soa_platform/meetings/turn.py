"""TURN REST credentials for the tenant's coturn (`use-auth-secret`) and the ICE server list clients get.

The scheme coturn implements: username `<unix expiry>:<user ref>`, password
base64(HMAC-SHA1(shared secret, username)). coturn recomputes the password and refuses an expired one,
so the platform never stores TURN users.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any

from soa_platform.settings import PlatformSettings


def turn_credentials(shared_secret: str, user_ref: str, ttl_seconds: int, now: float | None = None) -> tuple[str, str]:
    """(username, password) valid for ``ttl_seconds`` from ``now``."""
    expiry = int(now if now is not None else time.time()) + ttl_seconds
    username = f"{expiry}:{user_ref}"
    digest = hmac.new(shared_secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


def ice_servers(settings: PlatformSettings, user_ref: str, now: float | None = None) -> list[dict[str, Any]]:
    """`RTCIceServer` dicts for a WebRTC client: the tenant's TURN URIs with fresh credentials."""
    secret = settings.turn_shared_secret.get_secret_value()
    if not settings.turn_uris or not secret:
        return []
    username, password = turn_credentials(secret, user_ref, settings.turn_credential_seconds, now)
    return [{"urls": list(settings.turn_uris), "username": username, "credential": password}]
