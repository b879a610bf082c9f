"""Login, the auth discovery a client needs before it has a token, and the current user."""

from __future__ import annotations

from fastapi import APIRouter, Request

from soa_platform.dependencies import CurrentUser, PlatformDep, UowDep, client_ip
from soa_platform.identity import service
from soa_platform.identity.schemas import AuthConfig, LoginRequest, OidcConfig, TokenResponse, UserOut

router = APIRouter(tags=["identity"])


@router.get("/v1/auth/config", response_model=AuthConfig)
async def auth_config(platform: PlatformDep) -> AuthConfig:
    """How to log in to this tenant (public: a client needs it before it has a token)."""
    s = platform.settings
    oidc = OidcConfig(issuer=s.oidc_issuer, client_id=s.oidc_client_id) if s.oidc_issuer else None
    return AuthConfig(tenant=s.tenant, display_name=s.display_name, local_accounts=s.local_accounts, oidc=oidc)


@router.post("/v1/auth/login", response_model=TokenResponse, responses={400: {}, 401: {}, 403: {}, 429: {}})
async def login(body: LoginRequest, request: Request, platform: PlatformDep, uow: UowDep) -> TokenResponse:
    """Exchange a local account's e-mail and password for an access token."""
    await platform.limiter.hit("login", client_ip(request) or "unknown")
    token, expires_in = await service.login_local(
        uow.session, platform.settings, platform.tokens, body.email, body.password, client_ip(request)
    )
    return TokenResponse(access_token=token, expires_in=expires_in)


@router.get("/v1/me", response_model=UserOut, responses={401: {}})
async def me(user: CurrentUser) -> UserOut:
    return UserOut.model_validate(user)
