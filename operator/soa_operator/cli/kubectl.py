"""Cluster-side helpers of the CLI: reading tenants and waiting for them, with progress."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from rich.console import Console

from soa_operator import labels
from soa_operator.kube.client import KubeClient, KubeError

CLI_FIELD_MANAGER = "soa-cli"
T = TypeVar("T")


class CliError(Exception):
    """Stops the command with this message and exit code 1."""


def connect(kubeconfig: str | None) -> KubeClient:
    try:
        return KubeClient.from_environment(kubeconfig)
    except Exception as exc:  # the kubernetes loader raises many types for one cause
        raise CliError(f"cannot load Kubernetes credentials: {exc}") from None


def get_tenant(client: KubeClient, name: str) -> dict[str, Any]:
    tenant = call(lambda: client.get(labels.API_VERSION, labels.KIND, name))
    if tenant is None:
        raise CliError(f"SOATenant {name!r} not found")
    return tenant


def call(fn: Callable[[], T]) -> T:
    """Run an API call, turning its failure into a CliError a person can act on."""
    try:
        return fn()
    except KubeError as exc:
        raise describe(exc) from None


def describe(exc: KubeError) -> CliError:
    if exc.status == 0:
        return CliError(f"cannot reach the Kubernetes API: {exc}")
    if exc.status == 404 and "does not serve" in str(exc):
        return CliError(f"the SOATenant API is not installed here (CRD {labels.CRD_NAME}): {exc}")
    if exc.status in (401, 403):
        return CliError(f"not allowed: {exc}")
    return CliError(f"the Kubernetes API refused the request: {exc}")


def ready_condition(tenant: dict[str, Any]) -> dict[str, Any]:
    for cond in (tenant.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return dict(cond)
    return {}


def wait_for_phase(
    client: KubeClient, name: str, phases: set[str], timeout: float, console: Console, poll: float = 1.0
) -> dict[str, Any]:
    """Poll until the tenant reaches one of ``phases``, showing phase and the Ready reason."""
    deadline = time.monotonic() + timeout
    with console.status(f"waiting for {name}…") as spinner:
        while True:
            tenant = get_tenant(client, name)
            status = tenant.get("status") or {}
            phase = status.get("phase") or "Pending"
            ready = ready_condition(tenant)
            current = status.get("observedGeneration") == tenant["metadata"].get("generation")
            spinner.update(f"{name}: [bold]{phase}[/] — {ready.get('reason', '')} {ready.get('message', '')}")
            if current and phase in phases:
                return tenant
            if current and phase == "Failed" and "Failed" not in phases:
                raise CliError(f"{name} failed: {ready.get('reason')}: {ready.get('message')}")
            if time.monotonic() > deadline:
                raise CliError(f"timed out after {timeout:.0f}s waiting for {name}: phase {phase}")
            time.sleep(poll)
