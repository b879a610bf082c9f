"""Size presets set replicas, resources and quotas; explicit quotas override them."""

from __future__ import annotations

import pytest

from soa_operator.api.model import QuotasSpec, SOATenantSpec
from soa_operator.api.presets import PRESETS, resolve_sizing
from soa_operator.reconcile.tenant import SpecProblem, check_feasible


@pytest.mark.parametrize(("size", "seats", "api"), [("small", 500, 2), ("medium", 2000, 3), ("large", 10000, 6)])
def test_presets_are_named_by_seats(size: str, seats: int, api: int) -> None:
    sizing = resolve_sizing(size, None)
    assert sizing.seats == seats
    assert sizing.replicas["api"] == api
    assert sizing.quotas["seats"] == seats


def test_presets_grow_monotonically() -> None:
    small, medium, large = (PRESETS[s] for s in PRESETS)  # type: ignore[index]
    assert small.seats < medium.seats < large.seats
    assert small.replicas["api"] <= medium.replicas["api"] <= large.replicas["api"]


def test_explicit_quota_overrides_preset_and_keeps_the_rest() -> None:
    sizing = resolve_sizing("small", QuotasSpec(storage="300Gi"))
    assert sizing.quotas["storage"] == "300Gi"
    assert sizing.quotas["cpu"] == PRESETS["small"].quotas["cpu"]  # type: ignore[index]


def test_custom_size_scales_replicas_with_seats() -> None:
    sizing = resolve_sizing("custom", QuotasSpec(seats=5000, storage="2Ti", cpu="32", memory="64Gi"))
    assert sizing.replicas["api"] == 5
    assert sizing.quotas == {"seats": 5000, "storage": "2Ti", "cpu": "32", "memory": "64Gi", "pods": 100}


def test_custom_size_without_quotas_is_reported_not_crashed() -> None:
    with pytest.raises(SpecProblem, match="size: custom requires quotas"):
        check_feasible(SOATenantSpec(displayName="X", size="custom"))  # type: ignore[arg-type]


def test_storage_larger_than_quota_is_infeasible() -> None:
    spec = SOATenantSpec.model_validate(
        {"displayName": "X", "components": {"storage": {"capacity": "500Gi"}}, "quotas": {"storage": "100Gi"}}
    )
    with pytest.raises(SpecProblem, match=r"capacity 500Gi exceeds the storage quota 100Gi"):
        check_feasible(spec)


def test_meeting_larger_than_seats_is_infeasible() -> None:
    spec = SOATenantSpec.model_validate(
        {"displayName": "X", "components": {"meetings": {"maxParticipants": 400}}, "quotas": {"seats": 100}}
    )
    with pytest.raises(SpecProblem, match="maxParticipants 400 exceeds seats 100"):
        check_feasible(spec)
