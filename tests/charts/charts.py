"""The charts under test and how the operator renders them (paths, release names, value sets)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.charts.manifests import Manifest

REPO_ROOT = Path(__file__).resolve().parents[2]
TENANT_CHART = REPO_ROOT / "charts" / "soa-tenant"
OPERATOR_CHART = REPO_ROOT / "charts" / "soa-operator"
TENANT_RELEASE = "soa"  # the operator always renders the tenant chart under this release name
OPERATOR_RELEASE = "soa-operator"
OPERATOR_NAMESPACE = "soa-system"

# Every optional branch of the tenant chart switched on: OIDC (client secret, egress policy),
# more than one worker (its PodDisruptionBudget), admins and allowed domains in the settings.
ALL_FEATURES: dict[str, Any] = {
    "tenant": {"admins": ["admin@moitt.gov.pk"], "allowedEmailDomains": ["moitt.gov.pk"]},
    "replicas": {"api": 3, "worker": 2, "beat": 1},
    "identity": {
        "oidc": {
            "issuer": "https://sso.gov.pk/realms/moitt",
            "clientId": "soa",
            "clientSecretRef": {"name": "moitt-oidc", "key": "client-secret"},
        }
    },
    "networkPolicy": {"oidcEgressCIDRs": ["203.0.113.0/24"]},
}

RenderTenant = Callable[..., list[Manifest]]
RenderTenantFiles = Callable[..., dict[str, str]]
