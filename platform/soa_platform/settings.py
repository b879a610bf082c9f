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

    # worker and beat (Celery): broker timings, heartbeats and the intervals of the periodic tasks. The defaults
    # suit production; tests set the broker timings low so a killed worker's task comes back in seconds.
    # Redis transport: an unacknowledged task goes back to the queue once it is older than the visibility
    # timeout, checked every restore interval x throttle seconds. Keep the timeout above the longest task
    # and above any retry countdown, or the task runs twice (harmless for our idempotent tasks, but wasted).
    broker_visibility_timeout: float = Field(default=900.0, gt=0)
    broker_unacked_restore_interval: float = Field(default=10.0, gt=0)
    broker_unacked_restore_throttle: int = Field(default=1, ge=1)
    # Embedded SQLAlchemy broker (`sqla+sqlite://`): how often an idle worker polls the queue table.
    broker_polling_interval: float = Field(default=0.2, gt=0)

    worker_pool: Literal["prefork", "solo", "threads"] = "prefork"
    worker_concurrency: int = Field(default=2, ge=1)

    heartbeat_interval_seconds: float = Field(default=10.0, gt=0)
    heartbeat_max_age_seconds: float = Field(default=60.0, gt=0)  # also bounds a task's run time on --pool=solo
    beat_schedule_file: str = "/tmp/soa-beat-schedule"  # noqa: S108 - the root filesystem is read-only; /tmp is not

    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    outbox_sweep_seconds: float = Field(default=60.0, gt=0)
    outbox_retry_after_seconds: float = Field(default=30.0, gt=0)  # first re-enqueue; doubles per attempt
    outbox_retry_max_delay_seconds: float = Field(default=6 * 3600.0, gt=0)
    outbox_max_attempts: int = Field(default=20, ge=1)

    # an export still pending this long after its request was lost (e.g. by the embedded broker): enqueue it again
    audit_export_sweep_seconds: float = Field(default=600.0, gt=0)

    retention_purge_seconds: float = Field(default=3600.0, gt=0)
    retention_batch_size: int = Field(default=500, ge=1, le=10_000)

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
