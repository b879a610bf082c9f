"""The platform's one settings class: every process reads the environment the tenant chart sets."""

from __future__ import annotations

import re
from decimal import Decimal
from functools import cached_property
from typing import Annotated, Literal
from urllib.parse import quote

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Values an operator might leave in a copied example; a process refuses to start with them.
PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "changethis", "secret", "password", "xxx"})
MIN_SECRET_LENGTH = 32


_QUANTITY_UNITS = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15,
                   "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50}  # fmt: skip


def parse_quantity(value: str) -> int:
    """A Kubernetes quantity such as `50Gi` or `1.5G` in whole bytes."""
    match = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)([A-Za-z]*)", value.strip())
    if match is None or match.group(2) not in _QUANTITY_UNITS:
        raise ValueError(f"not a quantity: {value!r}")
    return int(Decimal(match.group(1)) * _QUANTITY_UNITS[match.group(2)])


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
    database_pool_size: int = Field(default=10, ge=1, le=200)  # connections per process, opened once and kept
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
    # how long an api process trusts the user row it read for a token (0: read it on every request); a
    # disabled account or a role change reaches the other api processes within this time
    user_cache_seconds: float = Field(default=5.0, ge=0, le=60)

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

    # files ([3/4]): the object store behind `soa_platform.files.storage`. "s3" is the tenant's MinIO (any
    # S3 server); "local" is a directory served through signed api URLs, for the embedded default only.
    domain: str = ""
    storage_enabled: bool = True
    storage_driver: Literal["s3", "local"] = "s3"
    storage_local_dir: str = ""  # the local driver's root directory
    storage_max_upload_mib: int = Field(default=100, ge=1, le=5 * 1024 * 1024)
    storage_versioning: bool = False
    storage_capacity: str = Field(default="50Gi", pattern=r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$")
    storage_upload_url_seconds: int = Field(default=900, ge=10, le=7 * 24 * 3600)
    storage_download_url_seconds: int = Field(default=300, ge=10, le=7 * 24 * 3600)
    storage_multipart_part_mib: int = Field(default=16, ge=5, le=5 * 1024)  # S3's smallest part is 5 MiB
    storage_pending_upload_hours: float = Field(default=24.0, gt=0)  # an upload never completed is removed after this
    clamd_address: str = ""  # "host:port" or a unix socket path; empty: no virus scan
    s3_endpoint: str = ""  # what the platform's processes use, e.g. http://soa-minio.<ns>.svc:9000
    s3_public_endpoint: str = ""  # what browsers use in presigned URLs; empty: s3_endpoint
    s3_bucket: str = ""
    s3_region: str = "us-east-1"
    s3_access_key: SecretStr = SecretStr("")
    s3_secret_key: SecretStr = SecretStr("")
    s3_root_user: SecretStr = SecretStr("")  # only the migration Job (`soa storage init`) gets these
    s3_root_password: SecretStr = SecretStr("")

    # meetings ([4/4]): the tenant's Janus (SFU) and coturn (TURN)
    meetings_enabled: bool = True
    meetings_max_participants: int = Field(default=50, ge=2, le=1000)
    meetings_max_concurrent_meetings: int = Field(default=10, ge=1, le=10_000)
    meetings_idle_close_seconds: float = Field(default=300.0, gt=0)
    janus_url: str = ""  # Janus HTTP transport, e.g. http://soa-janus.<ns>.svc:8088/janus
    janus_public_url: str = ""  # what clients connect to; empty: janus_url
    janus_admin_url: str = ""
    janus_api_secret: SecretStr = SecretStr("")
    janus_admin_secret: SecretStr = SecretStr("")
    turn_uris: Annotated[list[str], NoDecode] = Field(default_factory=list)
    turn_shared_secret: SecretStr = SecretStr("")
    turn_credential_seconds: int = Field(default=3600, ge=60, le=24 * 3600)

    @field_validator("admins", "allowed_email_domains", "turn_uris", mode="before")
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

    @cached_property
    def storage_quota_bytes(self) -> int:
        """`storage_capacity` (a Kubernetes quantity, as the tenant spec gives it) in bytes."""
        return parse_quantity(self.storage_capacity)

    @cached_property
    def storage_max_upload_bytes(self) -> int:
        return self.storage_max_upload_mib * 1024 * 1024
