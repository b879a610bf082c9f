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
from soa_operator.reconcile.apply import apply_desired, prune_undesired
from soa_operator.reconcile.kinds import NAMESPACE, kind_of
from soa_operator.reconcile.observe import Observed, observe_tenant
from soa_operator.reconcile.rollout import RolloutPlan, plan_rollout
from soa_operator.reconcile.secrets import ensure_generated_secrets
from soa_operator.reconcile.status import (
    COMPONENT_CONDITIONS,
    Assessment,
    ConditionState,
    build_status,
    component_counts,
    status_changed,
)
from soa_operator.rendering.render import RenderError, render_tenant_manifests
from soa_operator.rendering.values import build_values, tenant_domain
from soa_operator.settings import OperatorSettings

log = logging.getLogger("soa_operator.reconcile")
tracer = trace.get_tracer("soa_operator")


@dataclass
class Outcome:
    """What a reconcile did; ``retry_after`` is set when it should run again soon."""

    phase: Phase
    applied: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    created_secrets: list[str] = field(default_factory=list)
    status_written: bool = False
    retry_after: float | None = None


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

    def reconcile(self, body: Mapping[str, Any]) -> Outcome:
        meta = body.get("metadata") or {}
        name = str(meta["name"])
        with tracer.start_as_current_span("soa.reconcile", attributes={"soa.tenant": name}) as span:
            try:
                outcome = self._reconcile(name, meta, body)
            except KubeError as exc:
                span.record_exception(exc)
                log.warning("reconcile of %s hit the API: %s", name, exc)
                return Outcome(phase=Phase.Degraded, retry_after=self.settings.retry_seconds)
            span.set_attribute("soa.phase", outcome.phase.value)
            span.set_attribute("soa.writes", len(outcome.applied) + len(outcome.pruned))
            return outcome

    def _reconcile(self, name: str, meta: Mapping[str, Any], body: Mapping[str, Any]) -> Outcome:
        uid = meta.get("uid")
        generation = meta.get("generation")
        current_status = dict(body.get("status") or {})
        base = Assessment(phase=Phase.Failed, namespace=labels.tenant_namespace(name))
        try:
            spec = parse_spec(body.get("spec"))
            check_feasible(spec)
        except ValidationError as exc:
            return self._report_problem(name, base, current_status, generation, "InvalidSpec", _validation_message(exc))
        except SpecProblem as exc:
            return self._report_problem(name, base, current_status, generation, exc.reason, str(exc))
        base.url = f"https://{tenant_domain(name, spec, self.settings)}"

        observed = observe_tenant(self.client, name)
        plan = plan_rollout(spec, current_status.get("version"), observed)
        values = build_values(name, spec, plan.rollout, self.settings, uid=uid or "")
        try:
            desired = render_tenant_manifests(self.settings.tenant_chart, values, name, uid)
        except RenderError as exc:
            return self._report_problem(name, base, current_status, generation, "RenderFailed", str(exc))

        outcome = Outcome(phase=Phase.Provisioning)
        namespace_objs = [obj for obj in desired if kind_of(obj) == NAMESPACE]
        # The namespace must exist before the Secrets and objects inside it.
        ns_result = apply_desired(self.client, namespace_objs, observed)
        outcome.created_secrets = ensure_generated_secrets(self.client, name, uid, observed.secret_names)
        result = apply_desired(self.client, [o for o in desired if kind_of(o) != NAMESPACE], observed)
        prune_undesired(self.client, desired, observed, result)
        outcome.applied = ns_result.applied + result.applied
        outcome.pruned = result.pruned

        assessment = self._assess(spec, plan, observed, result.live, desired, base)
        outcome.phase = assessment.phase
        outcome.status_written = self._write_status(name, assessment, current_status, generation)
        return outcome

    def _assess(
        self,
        spec: SOATenantSpec,
        plan: RolloutPlan,
        observed: Observed,
        live: dict[Any, dict[str, Any]],
        desired: list[dict[str, Any]],
        base: Assessment,
    ) -> Assessment:
        desired_keys = {(kind_of(o), o["metadata"]["name"]) for o in desired}
        counts = component_counts(live, desired_keys)
        assessment = Assessment(
            phase=Phase.Provisioning,
            components=counts,
            version=plan.migrated_version,
            namespace=base.namespace,
            url=base.url,
        )
        assessment.conditions["Isolated"] = self._isolation(observed, live, desired_keys)
        components = spec.components.model_dump()
        unready = []
        for component, ctype in COMPONENT_CONDITIONS.items():
            c = counts[component]
            if not components[component]["enabled"]:
                assessment.conditions[ctype] = ConditionState("True", "Disabled", f"{component} is disabled")
            elif spec.suspended:
                assessment.conditions[ctype] = ConditionState("False", "Suspended", "scaled to zero; data kept")
            elif c["desired"] and c["ready"] >= c["desired"]:
                assessment.conditions[ctype] = ConditionState("True", "Ready", f"{c['ready']}/{c['desired']} ready")
            else:
                unready.append(component)
                assessment.conditions[ctype] = ConditionState(
                    "False", "NotReady", f"{c['ready']}/{c['desired']} replicas ready"
                )
        assessment.conditions["UpgradeSucceeded"] = plan.condition
        assessment.phase = self._phase(spec, plan, unready, assessment.conditions["Isolated"])
        assessment.conditions["Ready"] = self._ready_condition(assessment.phase, plan, unready)
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
    def _phase(spec: SOATenantSpec, plan: RolloutPlan, unready: list[str], isolated: ConditionState) -> Phase:
        if spec.suspended:
            return Phase.Suspended
        if plan.migration_state == "failed":
            return Phase.Degraded if plan.migrated_version else Phase.Failed
        if plan.migrated_version is None:
            return Phase.Provisioning
        if plan.upgrading:
            return Phase.Upgrading
        if unready or isolated.status != "True" or plan.condition.status == "False":
            return Phase.Degraded
        return Phase.Ready

    @staticmethod
    def _ready_condition(phase: Phase, plan: RolloutPlan, unready: list[str]) -> ConditionState:
        if phase is Phase.Ready:
            return ConditionState("True", "Ready", "every component is ready")
        if phase is Phase.Suspended:
            return ConditionState("False", "Suspended", "workloads scaled to zero; data and secrets kept")
        if plan.condition.status == "False":
            return ConditionState("False", plan.condition.reason, plan.condition.message)
        if unready:
            return ConditionState("False", "ComponentsNotReady", "not ready: " + ", ".join(unready))
        return ConditionState("False", phase.value, plan.condition.message)

    def _report_problem(
        self,
        name: str,
        base: Assessment,
        current: dict[str, Any],
        generation: int | None,
        reason: str,
        message: str,
    ) -> Outcome:
        """A spec that cannot be made real: say why in status, change nothing else, do not retry."""
        base.phase = Phase.Failed
        base.version = current.get("version")
        base.components = current.get("components") or {}
        base.conditions["Ready"] = ConditionState("False", reason, message)
        written = self._write_status(name, base, current, generation)
        return Outcome(phase=Phase.Failed, status_written=written)

    def _write_status(self, name: str, assessment: Assessment, current: dict[str, Any], generation: int | None) -> bool:
        new = build_status(assessment, current, generation)
        if not status_changed(new, current):
            return False
        self.client.merge_patch(labels.API_VERSION, labels.KIND, name, {"status": new}, subresource="status")
        return True


_GUARDS = {"NetworkPolicy", "ResourceQuota", "LimitRange"}

__all__ = ["Outcome", "SpecProblem", "TenantReconciler", "check_feasible"]
