"""The platform's one settings class: every process reads the environment the tenant chart sets."""

from __future__ import annotations

from functools import cached_property
from typing import Annotated, Literal
from urllib.parse import quote

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Values an operator might leave in a copied example; a process refuses to start with them.
PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "changethis", "secret", "password", "xxx"})
MIN_SECRET_LENGTH = 32


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class PlatformSettings(BaseSettings):
    """One tenant's platform: identity, limits and where its stores are (env prefix `SOA_`)."""

    model_config = SettingsConfigDict(env_prefix="SOA_", extra="ignore", frozen=True)

    tenant: str = Field(default="local", pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)
    display_name: str = "SOA"
    public_url: str = "http://127.0.0.1:8000"
    admins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    allowed_email_domains: Annotated[list[str], NoDecode] = Field(default_factory=list)
    seats: int = Field(default=500, ge=1)

    # stores: a full URL wins; otherwise the parts the chart sets
    database_url: str | None = None
    database_host: str = "127.0.0.1"
    database_port: int = 5432
    database_name: str = "soa"
    database_user: str = "soa"
    database_password: SecretStr = SecretStr("")
    redis_url: str | None = None
    redis_host: str | None = None
    redis_port: int = 6379
    broker_url: str | None = None  # Celery broker; defaults to Redis

    # secrets from soa-app
    signing_key: SecretStr = SecretStr("")
    session_key: SecretStr = SecretStr("")

    # identity
    oidc_issuer: str = ""
    oidc_client_id: str = "soa"
    oidc_client_secret: SecretStr = SecretStr("")
    oidc_leeway_seconds: int = Field(default=30, ge=0, le=300)
    local_accounts: bool = False
    access_token_minutes: int = Field(default=60, ge=1, le=24 * 60)

    # messaging
    messaging_enabled: bool = True
    messaging_retention_days: int = Field(default=0, ge=0)
    messaging_max_message_bytes: int = Field(default=16384, ge=1, le=1_048_576)
    rate_limit: str = "20/second;600/minute"  # per user, `limits` notation
    notification_webhook_url: str = ""
    event_stream_length: int = Field(default=1000, ge=10)

    # processes
    metrics_port: int = 0  # 0: no separate Prometheus listener
    worker_heartbeat_file: str = "/tmp/soa-worker.heartbeat"  # noqa: S108 - the chart mounts /tmp
    beat_heartbeat_file: str = "/tmp/soa-beat.heartbeat"  # noqa: S108
    environment: Literal["production", "embedded", "test"] = "production"

    @field_validator("admins", "allowed_email_domains", mode="before")
    @classmethod
    def _csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("admins", "allowed_email_domains")
    @classmethod
    def _lower(cls, value: list[str]) -> list[str]:
        return [item.lower() for item in value]

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> PlatformSettings:
        for name in ("signing_key", "session_key"):
            secret = getattr(self, name).get_secret_value()
            if secret.lower() in PLACEHOLDER_SECRETS or len(secret) < MIN_SECRET_LENGTH:
                raise ValueError(
                    f"SOA_{name.upper()} must be a generated secret of at least {MIN_SECRET_LENGTH} characters"
                )
        password = self.database_password.get_secret_value()
        if self.database_url is None and self.environment == "production" and password.lower() in PLACEHOLDER_SECRETS:
            raise ValueError("SOA_DATABASE_PASSWORD must be set to a generated secret")
        return self

    @cached_property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        password = quote(self.database_password.get_secret_value(), safe="")
        return (
            f"postgresql+asyncpg://{quote(self.database_user, safe='')}:{password}"
            f"@{self.database_host}:{self.database_port}/{self.database_name}"
        )

    @cached_property
    def effective_redis_url(self) -> str | None:
        if self.redis_url:
            return self.redis_url
        if self.redis_host:
            return f"redis://{self.redis_host}:{self.redis_port}/0"
        return None

    @cached_property
    def token_issuer(self) -> str:
        """Issuer of tokens this platform signs itself (local accounts): bound to the tenant."""
        return f"{self.public_url.rstrip('/')}/soa/{self.tenant}"

    @cached_property
    def token_audience(self) -> str:
        return f"soa:{self.tenant}"
