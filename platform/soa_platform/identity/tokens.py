"""Bearer tokens: ones this tenant signs for local accounts, and OIDC tokens of the tenant's issuer.

Every token is bound to one tenant by issuer and audience; a token of another tenant is refused even
where two tenants were (wrongly) given the same key.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import jwt

from soa_platform.db import utcnow
from soa_platform.errors import NotAuthenticated
from soa_platform.settings import PlatformSettings

LOCAL_ALGORITHM = "HS256"
OIDC_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]


@dataclass(frozen=True)
class VerifiedToken:
    source: str  # "local" | "oidc"
    subject: str
    claims: dict[str, Any]


class TokenService:
    def __init__(self, settings: PlatformSettings) -> None:
        self.settings = settings
        self._jwks: jwt.PyJWKClient | None = None
        self._jwks_lock = asyncio.Lock()

    def issue(self, user_id: int) -> tuple[str, int]:
        lifetime = timedelta(minutes=self.settings.access_token_minutes)
        now = utcnow()
        claims = {
            "iss": self.settings.token_issuer,
            "aud": self.settings.token_audience,
            "sub": str(user_id),
            "iat": now,
            "exp": now + lifetime,
            "soa_tenant": self.settings.tenant,
        }
        key = self.settings.signing_key.get_secret_value()
        return jwt.encode(claims, key, algorithm=LOCAL_ALGORITHM), int(lifetime.total_seconds())

    async def verify(self, token: str) -> VerifiedToken:
        # route by the header's algorithm (a cheap decode), so the payload is decoded once, verified;
        # each path accepts only its own algorithms and checks issuer and audience
        try:
            algorithm = jwt.get_unverified_header(token).get("alg")
        except jwt.PyJWTError:
            raise NotAuthenticated("malformed token") from None
        if algorithm == LOCAL_ALGORITHM:
            return self._verify_local(token)
        if algorithm not in OIDC_ALGORITHMS:
            raise NotAuthenticated("invalid token")
        if not self.settings.oidc_issuer or _unverified_issuer(token) != self.settings.oidc_issuer:
            # checked before the JWKS lookup: a token of another issuer must not make us fetch keys
            raise NotAuthenticated("token was not issued for this tenant")
        return await self._verify_oidc(token)

    def _verify_local(self, token: str) -> VerifiedToken:
        try:
            claims = jwt.decode(
                token,
                self.settings.signing_key.get_secret_value(),
                algorithms=[LOCAL_ALGORITHM],
                audience=self.settings.token_audience,
                issuer=self.settings.token_issuer,
                leeway=self.settings.oidc_leeway_seconds,
                options={"require": ["exp", "iat", "sub", "aud", "iss"]},
            )
        except jwt.ExpiredSignatureError:
            raise NotAuthenticated("token expired") from None
        except (jwt.InvalidIssuerError, jwt.InvalidAudienceError):
            raise NotAuthenticated("token was not issued for this tenant") from None
        except jwt.PyJWTError:
            raise NotAuthenticated("invalid token") from None
        if claims.get("soa_tenant") != self.settings.tenant:
            raise NotAuthenticated("token was not issued for this tenant")
        return VerifiedToken("local", str(claims["sub"]), claims)

    async def _verify_oidc(self, token: str) -> VerifiedToken:
        client = await self._jwks_client()
        try:
            signing_key = await asyncio.to_thread(client.get_signing_key_from_jwt, token)
            claims = jwt.decode(
                token,
                signing_key.key,
                algorithms=OIDC_ALGORITHMS,
                audience=self.settings.oidc_client_id,
                issuer=self.settings.oidc_issuer,
                leeway=self.settings.oidc_leeway_seconds,
                options={"require": ["exp", "iat", "sub", "aud", "iss"]},
            )
        except jwt.ExpiredSignatureError:
            raise NotAuthenticated("token expired") from None
        except jwt.InvalidAudienceError:
            raise NotAuthenticated("token was not issued for this tenant") from None
        except (jwt.PyJWTError, jwt.PyJWKClientError):
            raise NotAuthenticated("invalid token") from None
        return VerifiedToken("oidc", str(claims["sub"]), claims)

    async def _jwks_client(self) -> jwt.PyJWKClient:
        async with self._jwks_lock:
            if self._jwks is None:
                self._jwks = jwt.PyJWKClient(await self._discover_jwks_uri(), cache_keys=True, lifespan=300)
            return self._jwks

    async def _discover_jwks_uri(self) -> str:
        url = f"{self.settings.oidc_issuer.rstrip('/')}/.well-known/openid-configuration"
        try:
            async with httpx.AsyncClient(timeout=5) as client:
                response = await client.get(url)
                response.raise_for_status()
                jwks_uri = response.json()["jwks_uri"]
        except (httpx.HTTPError, KeyError, ValueError):
            raise NotAuthenticated("the identity provider cannot be reached; try again") from None
        return str(jwks_uri)


def _unverified_issuer(token: str) -> object:
    try:
        return jwt.decode(token, options={"verify_signature": False}).get("iss")
    except jwt.PyJWTError:
        raise NotAuthenticated("malformed token") from None
