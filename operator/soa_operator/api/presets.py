"""Size presets, named by seats like Mattermost's reference architectures.

A preset fixes replicas, per-container resources and namespace quotas; fields the IT board sets
explicitly in ``spec.quotas`` override the preset's quotas.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from soa_operator.api.model import QuotasSpec, Size


def _res(cpu_req: str, mem_req: str, cpu_lim: str, mem_lim: str) -> dict[str, dict[str, str]]:
    return {"requests": {"cpu": cpu_req, "memory": mem_req}, "limits": {"cpu": cpu_lim, "memory": mem_lim}}


@dataclass(frozen=True)
class Preset:
    seats: int
    replicas: dict[str, int]
    quotas: dict[str, str]
    pods: int
    resources: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)


_BASE_RESOURCES = {
    "api": _res("250m", "512Mi", "1", "1Gi"),
    "worker": _res("250m", "512Mi", "1", "1Gi"),
    "beat": _res("50m", "128Mi", "200m", "256Mi"),
    "migration": _res("100m", "256Mi", "500m", "512Mi"),
    "postgres": _res("500m", "1Gi", "2", "2Gi"),
    "redis": _res("100m", "256Mi", "500m", "512Mi"),
    "minio": _res("250m", "512Mi", "1", "1Gi"),
    "janus": _res("500m", "512Mi", "2", "1Gi"),
    "coturn": _res("100m", "128Mi", "500m", "256Mi"),
}

PRESETS: dict[Size, Preset] = {
    Size.small: Preset(
        seats=500,
        replicas={"api": 2, "worker": 1, "beat": 1},
        quotas={"cpu": "8", "memory": "16Gi", "storage": "200Gi"},
        pods=40,
        resources=_BASE_RESOURCES,
    ),
    Size.medium: Preset(
        seats=2000,
        replicas={"api": 3, "worker": 2, "beat": 1},
        quotas={"cpu": "16", "memory": "32Gi", "storage": "1Ti"},
        pods=60,
        resources={
            **_BASE_RESOURCES,
            "api": _res("500m", "1Gi", "2", "2Gi"),
            "postgres": _res("1", "2Gi", "4", "4Gi"),
        },
    ),
    Size.large: Preset(
        seats=10000,
        replicas={"api": 6, "worker": 4, "beat": 1},
        quotas={"cpu": "48", "memory": "96Gi", "storage": "5Ti"},
        pods=100,
        resources={
            **_BASE_RESOURCES,
            "api": _res("1", "2Gi", "2", "4Gi"),
            "worker": _res("500m", "1Gi", "2", "2Gi"),
            "postgres": _res("2", "8Gi", "8", "16Gi"),
            "redis": _res("500m", "1Gi", "1", "2Gi"),
            "janus": _res("1", "1Gi", "4", "2Gi"),
        },
    ),
}


@dataclass(frozen=True)
class Sizing:
    """The effective replicas, resources and quotas of one tenant."""

    seats: int
    replicas: dict[str, int]
    resources: dict[str, dict[str, dict[str, str]]]
    quotas: dict[str, Any]


def resolve_sizing(size: Size | str, quotas: QuotasSpec | None) -> Sizing:
    """Apply a preset, then the explicit quota overrides. ``custom`` scales replicas by seats."""
    size = Size(size)
    overrides = quotas.model_dump(exclude_none=True) if quotas else {}
    if size is Size.custom:
        seats = int(overrides["seats"])
        base = PRESETS[Size.small if seats <= 500 else Size.medium if seats <= 2000 else Size.large]
        replicas = {
            "api": max(2, -(-seats // 1000)),
            "worker": max(1, -(-seats // 2500)),
            "beat": 1,
        }
    else:
        base = PRESETS[size]
        seats = int(overrides.get("seats", base.seats))
        replicas = dict(base.replicas)
    effective = {**base.quotas, **{k: v for k, v in overrides.items() if k != "seats"}}
    effective["seats"] = seats
    effective["pods"] = max(base.pods, sum(replicas.values()) * 2 + 20)
    return Sizing(seats=seats, replicas=replicas, resources=dict(base.resources), quotas=effective)
