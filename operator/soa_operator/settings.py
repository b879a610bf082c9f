"""Operator settings: one pydantic-settings class, read from ``SOA_OPERATOR_*`` variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

_REPO_CHARTS = Path(__file__).resolve().parents[2] / "charts"


class OperatorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SOA_OPERATOR_", extra="ignore")

    charts_dir: Path = Field(_REPO_CHARTS, description="Where charts/soa-tenant lives (image: /charts).")
    base_domain: str = Field("soa.gov.pk", description="Tenants without spec.domain get <name>.<base>.")
    image_repository: str = "registry.soa.gov.pk/soa/platform"
    otlp_endpoint: str = "http://otel-collector.soa-observability.svc:4318"
    ingress_class: str = "nginx"
    cluster_issuer: str = "soa-letsencrypt"
    ingress_controller_namespace: str = "ingress-nginx"
    observability_namespace: str = "soa-observability"
    oidc_egress_cidrs: list[str] = Field(default_factory=lambda: ["0.0.0.0/0"])
    resync_seconds: float = Field(60.0, gt=0, description="Level-based resync of every tenant.")
    retry_seconds: float = Field(5.0, gt=0, description="Delay before retrying a failed reconcile.")
    status_coalesce_seconds: float = Field(
        5.0, ge=0, description="Progress-only status changes (counts, messages) are written at most this often."
    )
    deletion_recheck_seconds: float = Field(10.0, gt=0, description="How often a held deletion is re-checked.")
    watch_server_timeout: int = Field(300, gt=0)
    watch_client_timeout: int = Field(330, gt=0)
    metrics_port: int = Field(9090, ge=0, le=65535, description="Prometheus port; 0 disables it.")
    log_format: str = Field("json", pattern="^(json|plain)$")

    @property
    def tenant_chart(self) -> Path:
        return self.charts_dir / "soa-tenant"


@lru_cache(maxsize=1)
def get_settings() -> OperatorSettings:
    return OperatorSettings()
