"""One level-based reconcile of one SOATenant: observe, decide the rollout, render, apply, report.

Safe to run any number of times: every write is skipped when the live state already matches,
Secrets are only ever created, and the status is patched only when it changed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import trace
from pydantic import ValidationError

from soa_operator import labels
from soa_operator.api.model import Phase, SOATenantSpec, parse_spec
from soa_operator.api.presets import resolve_sizing
from soa_operator.kube.client import KubeClient, KubeError, parse_quantity
from soa_operator.reconcile.adoption import adopt_retained
from soa_operator.reconcile.apply import ApplyResult, apply_desired, prune_undesired
from soa_operator.reconcile.kinds import NAMESPACE, kind_of
from soa_operator.reconcile.observe import Observed, observe_tenant
from soa_operator.reconcile.rollout import RolloutPlan, plan_rollout
from soa_operator.reconcile.secrets import ensure_generated_secrets
from soa_operator.reconcile.status import (
    COMPONENT_CONDITIONS,
    Assessment,
    ConditionState,
    build_status,
    carried_conditions,
    component_counts,
)
from soa_operator.reconcile.status_writer import StatusWrite, StatusWriter
from soa_operator.rendering.render import RenderCache, RenderError
from soa_operator.rendering.values import build_values, tenant_domain
from soa_operator.settings import OperatorSettings

log = logging.getLogger("soa_operator.reconcile")
tracer = trace.get_tracer("soa_operator")

# Phases that describe a rollout in progress: kept until the tenant is Ready, so a first
# provisioning or an upgrade is not reported as Degraded while its workloads start.
_ROLLOUT_PHASES = {None, Phase.Pending.value, Phase.Provisioning.value, Phase.Upgrading.value}


@dataclass
class Outcome:
    """What a reconcile did; ``retry_after`` is set when it should run again soon."""

    phase: Phase | None
    applied: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    created_secrets: list[str] = field(default_factory=list)
    adopted: list[str] = field(default_factory=list)
    status_written: bool = False
    retry_after: float | None = None  # a failure: retry with backoff
    requeue_after: float | None = None  # not a failure: come back then (e.g. a coalesced status)


class SpecProblem(Exception):
    """A spec the schema accepted but that cannot be made real; the message says why."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"])
        parts.append(f"spec.{where}: {err['msg']}")
    return "; ".join(parts)


def check_feasible(spec: SOATenantSpec) -> None:
    """Cross-field rules: the CRD's CEL rule for ``custom`` (re-checked here, so servers without
    CEL and the offline CLI agree) and limits against the effective quotas, which CEL cannot see."""
    quotas = spec.quotas
    if spec.size == "custom" and not (quotas and quotas.seats and quotas.storage and quotas.cpu and quotas.memory):
        raise SpecProblem(
            "QuotasRequired", "size: custom requires quotas.seats, quotas.storage, quotas.cpu and quotas.memory"
        )
    sizing = resolve_sizing(spec.size, spec.quotas)
    storage = spec.components.storage
    if storage.enabled and parse_quantity(storage.capacity) > parse_quantity(sizing.quotas["storage"]):
        raise SpecProblem(
            "StorageExceedsQuota",
            f"components.storage.capacity {storage.capacity} exceeds the storage quota {sizing.quotas['storage']}",
        )
    meetings = spec.components.meetings
    if meetings.enabled and meetings.maxParticipants > sizing.seats:
        raise SpecProblem(
            "ParticipantsExceedSeats",
            f"components.meetings.maxParticipants {meetings.maxParticipants} exceeds seats {sizing.seats}",
        )


class TenantReconciler:
    """Reconciles tenants through one Kubernetes client; stateless between calls."""

    def __init__(self, client: KubeClient, settings: OperatorSettings) -> None:
        self.client = client
        self.settings = settings
        self.renders = RenderCache(settings.tenant_chart)
        self.statuses = StatusWriter(client, settings.status_coalesce_seconds)

    def reconcile(self, body: Mapping[str, Any]) -> Outcome:
        meta = body.get("metadata") or {}
        name = str(meta["name"])
        with tracer.start_as_current_span("soa.reconcile", attributes={"soa.tenant": name}) as span:
            try:
                outcome = self._reconcile(name, meta, body)
            except KubeError as exc:
                span.record_exception(exc)
                log.warning("reconcile of %s hit the API: %s", name, exc, extra={"tenant": name})
                return Outcome(phase=None, retry_after=self.settings.retry_seconds)
            span.set_attribute("soa.phase", outcome.phase.value if outcome.phase else "")
            span.set_attribute("soa.writes", len(outcome.applied) + len(outcome.pruned))
            return outcome

    def _reconcile(self, name: str, meta: Mapping[str, Any], body: Mapping[str, Any]) -> Outcome:
        uid = meta.get("uid")
        generation = meta.get("generation")
        current = dict(body.get("status") or {})
        try:
            spec = parse_spec(body.get("spec"))
            check_feasible(spec)
        except ValidationError as exc:
            return self._report_problem(name, current, generation, "InvalidSpec", _validation_message(exc))
        except SpecProblem as exc:
            return self._report_problem(name, current, generation, exc.reason, str(exc))

        observed = observe_tenant(self.client, name)
        plan = plan_rollout(spec, current.get("version"), observed)
        values = build_values(name, spec, plan.rollout, self.settings, uid=uid or "")
        try:
            desired = self.renders.render(values, name, uid)
        except RenderError as exc:
            return self._report_problem(name, current, generation, "RenderFailed", str(exc))

        outcome = Outcome(phase=Phase.Provisioning)
        outcome.adopted = adopt_retained(self.client, name, uid, observed)
        # The namespace must exist before the Secrets and objects inside it.
        ns_result = apply_desired(self.client, [o for o in desired if kind_of(o) == NAMESPACE], observed)
        outcome.created_secrets = ensure_generated_secrets(self.client, name, uid, observed.secret_names)
        result = apply_desired(self.client, [o for o in desired if kind_of(o) != NAMESPACE], observed)
        result.rejected.update(ns_result.rejected)
        prune_undesired(self.client, desired, observed, result)
        outcome.applied = ns_result.applied + result.applied
        outcome.pruned = result.pruned

        url = f"https://{tenant_domain(name, spec, self.settings)}"
        assessment = self._assess(spec, plan, observed, result, desired, url, current.get("phase"))
        outcome.phase = assessment.phase
        status = self._write_status(name, assessment, current, generation)
        outcome.status_written, outcome.requeue_after = status.written, status.requeue_after
        if result.rejected:
            # Rejections need a spec or chart change; retry at the resync pace, not in a hot loop.
            outcome.retry_after = self.settings.resync_seconds
        return outcome

    def _assess(
        self,
        spec: SOATenantSpec,
        plan: RolloutPlan,
        observed: Observed,
        result: ApplyResult,
        desired: list[dict[str, Any]],
        url: str,
        previous_phase: str | None,
    ) -> Assessment:
        desired_keys = {(kind_of(o), o["metadata"]["name"]) for o in desired}
        counts = component_counts(result.live, desired_keys)
        assessment = Assessment(
            phase=Phase.Provisioning,
            components=counts,
            version=plan.migrated_version,
            namespace=observed.namespace_name,
            url=url,
        )
        isolated = self._isolation(observed, result.live, desired_keys)
        assessment.conditions["Isolated"] = isolated
        components = spec.components.model_dump()
        unready = []
        for component, ctype in COMPONENT_CONDITIONS.items():
            c = counts[component]
            if not components[component]["enabled"]:
                state = ConditionState("True", "Disabled", f"{component} is disabled")
            elif spec.suspended:
                state = ConditionState("False", "Suspended", "scaled to zero; data kept")
            elif c["desired"] and c["ready"] >= c["desired"]:
                state = ConditionState("True", "Ready", f"{c['ready']}/{c['desired']} replicas ready")
            else:
                unready.append(component)
                state = ConditionState("False", "NotReady", f"{c['ready']}/{c['desired']} replicas ready")
            assessment.conditions[ctype] = state
        assessment.conditions["UpgradeSucceeded"] = plan.condition
        assessment.phase = self._phase(spec, plan, unready, isolated, result.rejected, previous_phase)
        assessment.conditions["Ready"] = self._ready_condition(assessment.phase, plan, unready, isolated, result)
        return assessment

    @staticmethod
    def _isolation(observed: Observed, live: dict[Any, dict[str, Any]], desired_keys: set[Any]) -> ConditionState:
        ns = observed.namespace or {}
        enforce = (ns.get("metadata", {}).get("labels") or {}).get("pod-security.kubernetes.io/enforce")
        if enforce != "restricted":
            return ConditionState("False", "PodSecurityNotEnforced", "namespace does not enforce restricted")
        missing = [f"{k.kind}/{n}" for k, n in desired_keys if k.kind in _GUARDS and (k, n) not in live]
        if missing:
            return ConditionState("False", "GuardsMissing", "missing: " + ", ".join(sorted(missing)))
        return ConditionState("True", "Isolated", "restricted pods, default-deny network policies, quotas")

    @staticmethod
    def _phase(
        spec: SOATenantSpec,
        plan: RolloutPlan,
        unready: list[str],
        isolated: ConditionState,
        rejected: dict[str, str],
        previous: str | None,
    ) -> Phase:
        if spec.suspended:
            return Phase.Suspended
        if plan.migration_state == "failed":
            return Phase.Degraded if plan.migrated_version else Phase.Failed
        if plan.migrated_version is None:
            return Phase.Provisioning
        if plan.upgrading:
            return Phase.Upgrading
        healthy = not unready and not rejected and isolated.status == "True" and plan.condition.status != "False"
        if healthy:
            return Phase.Ready
        if previous in _ROLLOUT_PHASES and not rejected and plan.condition.status != "False":
            return Phase(previous or Phase.Provisioning.value)
        return Phase.Degraded

    @staticmethod
    def _ready_condition(
        phase: Phase, plan: RolloutPlan, unready: list[str], isolated: ConditionState, result: ApplyResult
    ) -> ConditionState:
        if phase is Phase.Ready:
            return ConditionState("True", "Ready", "every component is ready")
        if phase is Phase.Suspended:
            return ConditionState("False", "Suspended", "workloads scaled to zero; data and secrets kept")
        if result.rejected:
            detail = "; ".join(f"{ref}: {why}" for ref, why in sorted(result.rejected.items())[:3])
            return ConditionState("False", "ApplyRejected", f"the API server refused {detail}"[:1000])
        if plan.condition.status == "False":
            return ConditionState("False", plan.condition.reason, plan.condition.message)
        if isolated.status != "True":
            return ConditionState("False", isolated.reason, isolated.message)
        if unready:
            return ConditionState("False", "ComponentsNotReady", "not ready: " + ", ".join(unready))
        return ConditionState("False", phase.value, plan.condition.message)

    def _report_problem(
        self, name: str, current: dict[str, Any], generation: int | None, reason: str, message: str
    ) -> Outcome:
        """A spec that cannot be made real: say why in status, change nothing else, do not retry.

        Everything else in the status stays as it was: the running workloads are untouched.
        """
        assessment = Assessment(
            phase=Phase.Failed,
            conditions={**carried_conditions(current), "Ready": ConditionState("False", reason, message)},
            components=current.get("components") or {},
            version=current.get("version"),
            namespace=current.get("namespace") or labels.tenant_namespace(name),
            url=current.get("url"),
        )
        status = self._write_status(name, assessment, current, generation)
        return Outcome(phase=Phase.Failed, status_written=status.written, requeue_after=status.requeue_after)

    def _write_status(
        self, name: str, assessment: Assessment, current: dict[str, Any], generation: int | None
    ) -> StatusWrite:
        baseline = self.statuses.latest(name, current)
        return self.statuses.write(name, build_status(assessment, baseline, generation), current)


_GUARDS = {"NetworkPolicy", "ResourceQuota", "LimitRange"}

__all__ = ["Outcome", "SpecProblem", "TenantReconciler", "check_feasible"]
