"""The one place that knows SOA's API group, label, annotation and finalizer names."""

from __future__ import annotations

GROUP = "soa.moitt.gov.pk"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "SOATenant"
PLURAL = "soatenants"
SINGULAR = "soatenant"
SHORT_NAME = "soat"
CATEGORY = "soa"
CRD_NAME = f"{PLURAL}.{GROUP}"

FIELD_MANAGER = "soa-operator"
FINALIZER = f"{GROUP}/tenant-cleanup"
ANNOTATION_PREFIX = f"operator.{GROUP}"

MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "soa-operator"
TENANT_LABEL = f"{GROUP}/tenant"
COMPONENT_LABEL = "app.kubernetes.io/component"
PART_OF = "app.kubernetes.io/part-of"

DESIRED_HASH_ANNOTATION = f"{GROUP}/desired-hash"
RETAINED_LABEL = f"{GROUP}/retained"
RETAINED_FROM_ANNOTATION = f"{GROUP}/retained-from"
GENERATED_SECRET_LABEL = f"{GROUP}/generated-secret"

NAMESPACE_PREFIX = "soa-"


def tenant_namespace(tenant: str) -> str:
    """The namespace that holds every namespaced object of a tenant."""
    return f"{NAMESPACE_PREFIX}{tenant}"


def owned_labels(tenant: str) -> dict[str, str]:
    """Labels every object the operator owns for ``tenant`` carries."""
    return {MANAGED_BY: MANAGED_BY_VALUE, TENANT_LABEL: tenant, PART_OF: "soa"}


def owned_selector(tenant: str) -> str:
    """A label selector matching every object the operator owns for ``tenant``."""
    return f"{MANAGED_BY}={MANAGED_BY_VALUE},{TENANT_LABEL}={tenant}"
