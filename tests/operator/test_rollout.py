"""Workloads move to a release only after that release's migration Job succeeded."""

from __future__ import annotations

from typing import Any

from soa_operator.api.model import SOATenantSpec
from soa_operator.reconcile.kinds import JOB
from soa_operator.reconcile.observe import Observed
from soa_operator.reconcile.rollout import migration_job_name, plan_rollout


def _spec(version: str, **extra: Any) -> SOATenantSpec:
    return SOATenantSpec.model_validate({"displayName": "X", "version": version, **extra})


def _with_job(version: str, condition: str | None) -> Observed:
    observed = Observed("soa-x", {"metadata": {"name": "soa-x"}})
    status = {"conditions": [{"type": condition, "status": "True"}]} if condition else {}
    name = migration_job_name(version)
    observed.objects[(JOB, name)] = {"metadata": {"name": name}, "status": status}
    return observed


def test_job_name_is_a_dns_label_per_version() -> None:
    assert migration_job_name("0.2.0") == "soa-migrate-0-2-0"
    assert migration_job_name("1.0.0-rc.1") == "soa-migrate-1-0-0-rc-1"


def test_first_provision_waits_for_migration_before_workloads() -> None:
    plan = plan_rollout(_spec("0.1.0"), None, Observed("soa-x", None))
    assert plan.rollout.platform_version == ""
    assert plan.rollout.migration_version == "0.1.0"
    assert plan.condition.reason == "MigrationRunning"


def test_succeeded_migration_rolls_workloads_and_records_version() -> None:
    plan = plan_rollout(_spec("0.2.0"), "0.1.0", _with_job("0.2.0", "Complete"))
    assert plan.rollout.platform_version == "0.2.0"
    assert plan.migrated_version == "0.2.0"
    assert plan.condition.status == "True"


def test_failed_migration_keeps_workloads_on_old_version() -> None:
    plan = plan_rollout(_spec("0.2.0"), "0.1.0", _with_job("0.2.0", "Failed"))
    assert plan.rollout.platform_version == "0.1.0"
    assert plan.migrated_version == "0.1.0"
    assert (plan.condition.status, plan.condition.reason) == ("False", "MigrationFailed")
    assert "soa-migrate-0-2-0 failed; workloads stay on 0.1.0" in plan.condition.message


def test_upgrade_in_progress_is_upgrading() -> None:
    plan = plan_rollout(_spec("0.2.0"), "0.1.0", _with_job("0.2.0", None))
    assert plan.upgrading
    assert plan.rollout.platform_version == "0.1.0"


def test_downgrade_is_refused_and_keeps_running() -> None:
    plan = plan_rollout(_spec("0.1.0"), "0.2.0", Observed("soa-x", None))
    assert plan.rollout.platform_version == "0.2.0"
    assert plan.condition.reason == "DowngradeRefused"


def test_prerelease_sorts_before_its_release() -> None:
    plan = plan_rollout(_spec("1.0.0"), "1.0.0-rc.1", _with_job("1.0.0", None))
    assert plan.condition.reason == "MigrationRunning"


def test_upgrade_waits_while_suspended() -> None:
    plan = plan_rollout(_spec("0.2.0", suspended=True), "0.1.0", Observed("soa-x", None))
    assert plan.rollout.migration_version == "0.1.0"
    assert plan.condition.reason == "UpgradeDeferred"


def test_migrated_condition_reads_the_same_just_after_and_long_after() -> None:
    just_now = plan_rollout(_spec("0.2.0"), "0.1.0", _with_job("0.2.0", "Complete")).condition
    later = plan_rollout(_spec("0.2.0"), "0.2.0", Observed("soa-x", None)).condition
    assert just_now == later
