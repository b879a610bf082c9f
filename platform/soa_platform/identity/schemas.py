"""Request and response bodies of identity endpoints."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from soa_platform.identity.models import Role


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # not EmailStr: an account's address was validated when it was created (the embedded admin's
    # `.local` domain is one email-validator refuses)
    email: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    password: str = Field(min_length=1, max_length=1024)


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_in: int


class OidcConfig(BaseModel):
    issuer: str
    client_id: str


class AuthConfig(BaseModel):
    tenant: str
    display_name: str
    local_accounts: bool
    oidc: OidcConfig | None


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    email: str
    display_name: str
    role: Role
    active: bool
    created_at: datetime
    last_login_at: datetime | None


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: EmailStr
    display_name: str = Field(min_length=1, max_length=200)
    role: Role = Role.member
    password: str | None = Field(default=None, min_length=12, max_length=1024)


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Role | None = None
    active: bool | None = None
