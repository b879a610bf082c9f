"""Generated tenant Secrets: created once, never regenerated, never logged or reported.

Creation is a plain POST: if the Secret already exists (a restart, a retained tenant coming
back) the server answers 409 and the existing bytes stay exactly as they were.
"""

from __future__ import annotations

import base64
import secrets as random_source
from typing import Any

from soa_operator import labels
from soa_operator.kube.client import KubeClient
from soa_operator.rendering.values import SECRET_NAMES


def _token(nbytes: int = 32) -> str:
    return random_source.token_urlsafe(nbytes)


def _secret_payloads(tenant: str) -> dict[str, dict[str, str]]:
    """Fresh random material for every generated Secret (only used when one is missing)."""
    return {
        SECRET_NAMES["database"]: {"username": "soa", "password": _token()},
        SECRET_NAMES["objectStore"]: {
            "root-user": f"root-{tenant}"[:40],
            "root-password": _token(),
            "access-key": _token(15),
            "secret-key": _token(),
        },
        SECRET_NAMES["app"]: {"signing-key": _token(48), "session-key": _token(48)},
        SECRET_NAMES["meetings"]: {
            "janus-admin-secret": _token(),
            "janus-api-secret": _token(),
            "turn-shared-secret": _token(),
        },
    }


def generated_secret_names() -> list[str]:
    return sorted(SECRET_NAMES.values())


def secret_manifest(tenant: str, uid: str | None, name: str, data: dict[str, str]) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": labels.tenant_namespace(tenant),
        "labels": {**labels.owned_labels(tenant), labels.GENERATED_SECRET_LABEL: "true"},
    }
    if uid:
        meta["ownerReferences"] = [
            {"apiVersion": labels.API_VERSION, "kind": labels.KIND, "name": tenant, "uid": uid, "controller": True}
        ]
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": meta,
        "immutable": False,
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


def ensure_generated_secrets(client: KubeClient, tenant: str, uid: str | None, existing: set[str]) -> list[str]:
    """Create the generated Secrets that do not exist yet; returns the names created."""
    created: list[str] = []
    for name, data in _secret_payloads(tenant).items():
        if name in existing:
            continue
        if client.create(secret_manifest(tenant, uid, name, data)) is not None:
            created.append(name)
    return created
