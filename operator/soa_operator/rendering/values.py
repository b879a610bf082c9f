"""Derive charts/soa-tenant values from a SOATenant: the operator↔chart contract."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from soa_operator import labels
from soa_operator.api.model import SOATenantSpec
from soa_operator.api.presets import resolve_sizing
from soa_operator.kube.client import parse_quantity
from soa_operator.settings import OperatorSettings

SECRET_NAMES = {
    "database": "soa-database",
    "objectStore": "soa-objectstore",
    "app": "soa-app",
    "meetings": "soa-meetings",
}


@dataclass(frozen=True)
class Rollout:
    """Which platform release the workloads run and which release's migration must pass first.

    ``platform_version`` empty means no migration has succeeded yet: the api, worker and beat are
    not rendered until it does.
    """

    platform_version: str
    migration_version: str


def tenant_domain(name: str, spec: SOATenantSpec, settings: OperatorSettings) -> str:
    return spec.domain or f"{name}.{settings.base_domain}"


def build_values(
    name: str, spec: SOATenantSpec, rollout: Rollout, settings: OperatorSettings, uid: str = ""
) -> dict[str, Any]:
    """Every value the tenant chart needs, derived from the spec and operator settings only."""
    sizing = resolve_sizing(spec.size, spec.quotas)
    components = spec.components.model_dump()
    oidc = spec.identity.oidc
    return {
        "tenant": {
            "name": name,
            "displayName": spec.displayName,
            "uid": uid,
            "domain": tenant_domain(name, spec, settings),
            "admins": list(spec.admins),
            "allowedEmailDomains": list(spec.identity.allowedEmailDomains),
        },
        "image": {"repository": settings.image_repository, "pullPolicy": "IfNotPresent"},
        "platform": {"version": rollout.platform_version},
        "migration": {
            "version": rollout.migration_version,
            "backoffLimit": 2,
            "activeDeadlineSeconds": 900,
        },
        "suspended": spec.suspended,
        "components": components,
        "replicas": sizing.replicas,
        "resources": sizing.resources,
        "quotas": sizing.quotas,
        "limitRange": limit_range(sizing.resources),
        "secrets": dict(SECRET_NAMES),
        "identity": {
            "oidc": {
                "issuer": oidc.issuer if oidc else "",
                "clientId": oidc.clientId if oidc else "",
                "clientSecretRef": oidc.clientSecretRef.model_dump() if oidc and oidc.clientSecretRef else None,
            }
        },
        "tracing": {"sampleRatio": spec.tracing.sampleRatio, "otlpEndpoint": settings.otlp_endpoint},
        "ingress": {
            "enabled": True,
            "className": settings.ingress_class,
            "clusterIssuer": settings.cluster_issuer,
            "tlsSecretName": "soa-tls",
        },
        "networkPolicy": {
            "ingressControllerNamespace": settings.ingress_controller_namespace,
            "observabilityNamespace": settings.observability_namespace,
            "oidcEgressCIDRs": list(settings.oidc_egress_cidrs),
        },
    }


def limit_range(resources: dict[str, dict[str, dict[str, str]]]) -> dict[str, dict[str, str]]:
    """A LimitRange whose max admits the largest container of the preset, and no more."""
    limits = [r["limits"] for r in resources.values()]
    return {
        "default": {"cpu": "500m", "memory": "512Mi"},
        "defaultRequest": {"cpu": "100m", "memory": "128Mi"},
        "max": {
            "cpu": max((lim["cpu"] for lim in limits), key=parse_quantity),
            "memory": max((lim["memory"] for lim in limits), key=parse_quantity),
        },
    }


def release_namespace(name: str) -> str:
    return labels.tenant_namespace(name)
