"""The SOATenant API as pydantic models: the one source of truth for the CRD schema.

`soa_operator.api.crd` turns these models into the CRD's structural OpenAPI schema; the operator
parses live objects with the same models, so the schema and the code can never disagree.
Validation rules that Kubernetes evaluates (CEL) sit next to the fields they guard, under
``x-kubernetes-validations`` in ``json_schema_extra``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
# Kubernetes resource.Quantity, restricted to the binary/decimal suffixes people write.
QUANTITY = r"^([0-9]+(\.[0-9]+)?)(m|k|Ki|Mi|Gi|Ti|Pi|M|G|T|P)?$"
# Lowercase pre-releases only: the version names a migration Job and an image tag.
SEMVER = r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9a-z.-]+)?$"
HTTPS_URL = r"^https://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._~%/-]*)?$"
EMAIL = r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$"

Quantity = Annotated[str, Field(pattern=QUANTITY, max_length=32)]


def cel(rule: str, message: str, *, reason: str | None = None, field_path: str | None = None) -> dict[str, Any]:
    """One CEL validation rule with the message the user sees when it fails."""
    entry: dict[str, Any] = {"rule": rule, "message": message}
    if reason:
        entry["reason"] = reason
    if field_path:
        entry["fieldPath"] = field_path
    return entry


class _Model(BaseModel):
    # populate_by_name lets tests build models in Python; extra=forbid mirrors the structural schema.
    model_config = ConfigDict(extra="forbid", populate_by_name=True, use_enum_values=True)


class Size(StrEnum):
    small = "small"
    medium = "medium"
    large = "large"
    custom = "custom"


class DeletionPolicy(StrEnum):
    Retain = "Retain"
    Delete = "Delete"


class Phase(StrEnum):
    Pending = "Pending"
    Provisioning = "Provisioning"
    Ready = "Ready"
    Degraded = "Degraded"
    Suspended = "Suspended"
    Upgrading = "Upgrading"
    Deleting = "Deleting"
    Failed = "Failed"


class MessagingSpec(_Model):
    """Team messaging: channels, DMs, threads."""

    enabled: bool = Field(True, description="Run messaging. It is the core of the workspace.")
    retentionDays: int = Field(
        0, ge=0, le=36500, description="Delete messages older than this many days; 0 keeps them forever."
    )
    maxMessageBytes: int = Field(16384, ge=256, le=1048576, description="Largest accepted message body.")


class StorageSpec(_Model):
    """File storage in the tenant's own object store."""

    enabled: bool = Field(True, description="Run the tenant's object store and file sharing.")
    capacity: Quantity = Field(
        "50Gi",
        description="Size of the object store volume. Volumes can grow but never shrink.",
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "quantity(self).compareTo(quantity(oldSelf)) >= 0",
                    "storage.capacity cannot shrink: volumes only grow",
                )
            ]
        },
    )
    maxUploadMiB: int = Field(100, ge=1, le=5120, description="Largest accepted upload in MiB.")
    versioning: bool = Field(True, description="Keep previous versions of overwritten objects.")


class MeetingsSpec(_Model):
    """Video meetings through the tenant's own Janus SFU and coturn."""

    enabled: bool = Field(True, description="Run Janus and coturn for video meetings.")
    maxParticipants: int = Field(50, ge=2, le=500, description="Largest meeting.")
    maxConcurrentMeetings: int = Field(20, ge=1, le=1000, description="Meetings running at once.")


class ComponentsSpec(_Model):
    messaging: MessagingSpec = Field(default_factory=MessagingSpec)
    storage: StorageSpec = Field(default_factory=StorageSpec)
    meetings: MeetingsSpec = Field(default_factory=MeetingsSpec)


class QuotasSpec(_Model):
    """Overrides of the size preset's quotas; required in full for ``size: custom``."""

    seats: int | None = Field(None, ge=1, le=1_000_000, description="Licensed users.")
    storage: Quantity | None = Field(None, description="Total persistent storage of the namespace.")
    cpu: Quantity | None = Field(None, description="Total CPU limit of the namespace.")
    memory: Quantity | None = Field(None, description="Total memory limit of the namespace.")


class SecretKeyRef(_Model):
    name: str = Field(pattern=DNS_SUBDOMAIN, max_length=253)
    key: str = Field(pattern=r"^[-._a-zA-Z0-9]+$", max_length=253)


class OIDCSpec(_Model):
    issuer: str = Field(
        pattern=HTTPS_URL,
        max_length=512,
        description="OIDC issuer URL (https). Immutable: accounts are bound to it.",
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self == oldSelf",
                    "identity.oidc.issuer is immutable: accounts are bound to their issuer; "
                    "create a new tenant to change identity provider",
                )
            ]
        },
    )
    clientId: str = Field(min_length=1, max_length=255)
    clientSecretRef: SecretKeyRef | None = Field(
        None, description="Secret in the tenant namespace holding the client secret."
    )


class IdentitySpec(_Model):
    oidc: OIDCSpec | None = Field(None, description="Single sign-on; local accounts are used without it.")
    allowedEmailDomains: list[Annotated[str, Field(pattern=DNS_NAME, max_length=253)]] = Field(
        default_factory=list, max_length=50, description="Only users with these email domains may sign in."
    )


class TracingSpec(_Model):
    sampleRatio: float = Field(0.1, ge=0.0, le=1.0, description="Share of traces kept (parent-based).")


class SOATenantSpec(_Model):
    """What the IT board declares for one ministry."""

    displayName: str = Field(min_length=1, max_length=128, description="Name shown to users.")
    domain: str | None = Field(
        None,
        pattern=DNS_NAME,
        max_length=253,
        description="Ingress host; defaults to <name>.<operator base domain>.",
    )
    size: Size = Field(Size.small, description="Preset for replicas, resources and quotas (by seats).")
    version: str = Field("0.1.0", pattern=SEMVER, max_length=40, description="Platform release.")
    suspended: bool = Field(False, description="Scale every workload to zero and keep every byte.")
    deletionPolicy: DeletionPolicy = Field(
        DeletionPolicy.Retain, description="What deleting the SOATenant does to its data."
    )
    deletionProtection: bool = Field(True, description="While true, deleting the SOATenant is refused.")
    components: ComponentsSpec = Field(default_factory=ComponentsSpec)
    quotas: QuotasSpec | None = Field(None, description="Overrides of the size preset's quotas.")
    identity: IdentitySpec = Field(default_factory=IdentitySpec)
    admins: list[Annotated[str, Field(pattern=EMAIL, max_length=254)]] = Field(
        default_factory=list, max_length=20, description="Email addresses of the first tenant admins."
    )
    tracing: TracingSpec = Field(default_factory=TracingSpec)


SPEC_RULES = [
    cel(
        "self.size != 'custom' || (has(self.quotas) && has(self.quotas.seats) && has(self.quotas.storage)"
        " && has(self.quotas.cpu) && has(self.quotas.memory))",
        "size: custom requires quotas.seats, quotas.storage, quotas.cpu and quotas.memory",
        reason="FieldValueRequired",
        field_path=".quotas",
    ),
    cel(
        "!has(oldSelf.identity) || !has(oldSelf.identity.oidc) || (has(self.identity) && has(self.identity.oidc))",
        "identity.oidc cannot be removed once set: accounts are bound to their issuer",
        field_path=".identity.oidc",
    ),
]

ROOT_RULES = [
    cel(
        "size(self.metadata.name) <= 59 && self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",
        "metadata.name must be a DNS label of at most 59 characters starting with a letter "
        "(the tenant namespace is soa-<name>)",
        reason="FieldValueInvalid",
        field_path=".metadata.name",
    )
]


class Condition(_Model):
    """metav1.Condition."""

    type: str = Field(max_length=316)
    status: str = Field(pattern=r"^(True|False|Unknown)$")
    reason: str = Field(max_length=1024)
    message: str = Field("", max_length=32768)
    observedGeneration: int | None = Field(None, ge=0)
    lastTransitionTime: str


class ComponentStatus(_Model):
    ready: int = Field(0, ge=0)
    desired: int = Field(0, ge=0)


class SOATenantStatus(_Model):
    """What the operator observed; written only when it changed."""

    phase: Phase | None = None
    observedGeneration: int | None = None
    namespace: str | None = None
    url: str | None = None
    version: str | None = Field(None, description="Platform release whose migration has succeeded.")
    conditions: list[Condition] = Field(default_factory=list)
    components: dict[str, ComponentStatus] = Field(default_factory=dict)


def parse_spec(spec: Any) -> SOATenantSpec:
    """Parse a live object's spec (already defaulted by the API server, or not)."""
    return SOATenantSpec.model_validate(dict(spec or {}))
