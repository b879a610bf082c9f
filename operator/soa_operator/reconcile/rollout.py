"""Decide which release the workloads run and whether a migration must pass first.

The rule: workloads move to a release only after that release's migration Job succeeded.
``status.version`` records the last release whose migration passed; it is the operator's memory
of where the tenant stands, so an upgrade survives operator restarts.
"""

from __future__ import annotations

from dataclasses import dataclass

from soa_operator.api.model import SOATenantSpec
from soa_operator.reconcile.kinds import JOB
from soa_operator.reconcile.observe import Observed
from soa_operator.reconcile.status import ConditionState, job_state
from soa_operator.rendering.values import Rollout


def migration_job_name(version: str) -> str:
    """The Job that migrates to ``version`` (one per release: Jobs are immutable)."""
    return "soa-migrate-" + version.replace(".", "-")


def _semver_key(version: str) -> tuple[int, int, int, int, str]:
    core, _, pre = version.partition("-")
    major, minor, patch = (int(p) for p in core.split("."))
    # A release sorts after its own pre-releases.
    return major, minor, patch, 0 if pre else 1, pre


def _migrated(version: str) -> ConditionState:
    # One message whether the migration finished just now or long ago: a message that changed
    # between the two would cost a status write after the tenant is already Ready.
    return ConditionState(
        "True", "MigrationSucceeded", f"migration job {migration_job_name(version)} succeeded; running {version}"
    )


@dataclass(frozen=True)
class RolloutPlan:
    rollout: Rollout
    migrated_version: str | None  # what status.version should say after this reconcile
    migration_state: str  # missing | running | succeeded | failed | deferred
    upgrading: bool
    condition: ConditionState


def plan_rollout(spec: SOATenantSpec, migrated: str | None, observed: Observed) -> RolloutPlan:
    target = spec.version
    if migrated and _semver_key(target) < _semver_key(migrated):
        # Schemas only move forward; keep running what we have and say so.
        return RolloutPlan(
            rollout=Rollout(platform_version=migrated, migration_version=migrated),
            migrated_version=migrated,
            migration_state="succeeded",
            upgrading=False,
            condition=ConditionState(
                "False",
                "DowngradeRefused",
                f"version {target} is older than the migrated {migrated}; still on {migrated}",
            ),
        )
    if migrated == target:
        return RolloutPlan(
            rollout=Rollout(platform_version=target, migration_version=target),
            migrated_version=target,
            migration_state="succeeded",
            upgrading=False,
            condition=_migrated(target),
        )
    if spec.suspended:
        # Stores are scaled to zero: a migration now could only fail. Run it once resumed.
        return RolloutPlan(
            rollout=Rollout(platform_version=migrated or "", migration_version=migrated or ""),
            migrated_version=migrated,
            migration_state="deferred",
            upgrading=False,
            condition=ConditionState("Unknown", "UpgradeDeferred", f"upgrade to {target} waits until resumed"),
        )
    job = migration_job_name(target)
    state = job_state(observed.get(JOB, job))
    if state == "succeeded":
        return RolloutPlan(
            rollout=Rollout(platform_version=target, migration_version=target),
            migrated_version=target,
            migration_state=state,
            upgrading=False,
            condition=_migrated(target),
        )
    running_on = migrated or ""
    if state == "failed":
        keeps = f"workloads stay on {migrated}" if migrated else "workloads not started"
        condition = ConditionState("False", "MigrationFailed", f"migration job {job} failed; {keeps}")
    else:
        condition = ConditionState("Unknown", "MigrationRunning", f"migration job {job} migrating to {target}")
    return RolloutPlan(
        rollout=Rollout(platform_version=running_on, migration_version=target),
        migrated_version=migrated,
        migration_state=state,
        upgrading=bool(migrated),
        condition=condition,
    )
