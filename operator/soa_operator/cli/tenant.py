"""`soa tenant …`: the IT board's commands for ministry tenants."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.table import Table

from soa_operator import labels
from soa_operator.api.model import parse_spec
from soa_operator.cli.kubectl import (
    CLI_FIELD_MANAGER,
    CliError,
    call,
    connect,
    describe,
    get_tenant,
    ready_condition,
    wait_for_phase,
)
from soa_operator.cli.manifests import ManifestError, load_tenant, valid_name
from soa_operator.kube.client import KubeError
from soa_operator.reconcile.secrets import generated_secret_names
from soa_operator.rendering.render import RenderError, render_tenant_manifests, to_yaml
from soa_operator.rendering.values import Rollout, build_values
from soa_operator.settings import get_settings

app = typer.Typer(help="Create, inspect, suspend, resume and retire ministry tenants.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)

FileOpt = Annotated[Path, typer.Option("-f", "--file", help="A SOATenant manifest (YAML).")]
KubeconfigOpt = Annotated[str | None, typer.Option("--kubeconfig", envvar="KUBECONFIG", help="Kubeconfig path.")]
WaitOpt = Annotated[bool, typer.Option("--wait/--no-wait", help="Wait and show progress.")]
TimeoutOpt = Annotated[float, typer.Option("--timeout", help="Seconds to wait.")]


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/] {message}")
    return typer.Exit(code)


def _check_name(name: str) -> None:
    if not valid_name(name):
        raise _fail(f"{name!r} is not a tenant name: a DNS label of at most 59 characters", 2)


@app.command()
def render(
    file: FileOpt,
    uid: Annotated[str | None, typer.Option(help="Owner uid to set (the operator uses the live one).")] = None,
) -> None:
    """Print exactly the manifests the operator applies for a tenant in steady state. No cluster needed."""
    try:
        tenant = load_tenant(file)
    except ManifestError as exc:
        raise _fail(str(exc), 2) from None
    name = tenant["metadata"]["name"]
    spec = parse_spec(tenant.get("spec"))
    settings = get_settings()
    rollout = Rollout(platform_version=spec.version, migration_version=spec.version)
    try:
        objects = render_tenant_manifests(settings.tenant_chart, build_values(name, spec, rollout, settings), name, uid)
    except RenderError as exc:
        raise _fail(f"the tenant chart refused these values: {exc}", 2) from None
    secrets = ", ".join(generated_secret_names())
    typer.echo(f"# SOATenant {name}: {len(objects)} objects. Generated once in-cluster, never rendered: {secrets}")
    typer.echo(to_yaml(objects), nl=False)


@app.command()
def apply(
    file: FileOpt,
    kubeconfig: KubeconfigOpt = None,
    wait: WaitOpt = True,
    timeout: TimeoutOpt = 600,
    force_conflicts: Annotated[
        bool, typer.Option("--force-conflicts", help="Take over fields another manager (e.g. GitOps) owns.")
    ] = False,
) -> None:
    """Create or update a tenant from a manifest, then wait until it is Ready."""
    try:
        tenant = load_tenant(file)
        client = connect(kubeconfig)
        name = tenant["metadata"]["name"]
        body = {"apiVersion": labels.API_VERSION, "kind": labels.KIND, "metadata": {"name": name}}
        body["spec"] = tenant["spec"]
        try:
            client.apply(body, field_manager=CLI_FIELD_MANAGER, force=force_conflicts)
        except KubeError as exc:
            if exc.status != 409:
                raise describe(exc) from None
            raise CliError(
                f"{name}: fields in this manifest are owned by another manager ({exc}); "
                "change them there, or pass --force-conflicts to take them over"
            ) from None
        console.print(f"SOATenant [bold]{name}[/] applied")
        if wait:
            spec = tenant["spec"]
            target = {"Suspended"} if spec.get("suspended") else {"Ready"}
            done = wait_for_phase(client, name, target, timeout, console)
            console.print(f"[green]{name} is {done['status']['phase']}[/] — {done['status'].get('url', '')}")
    except ManifestError as exc:
        raise _fail(str(exc), 2) from None
    except CliError as exc:
        raise _fail(str(exc)) from None


@app.command("list")
def list_tenants(kubeconfig: KubeconfigOpt = None) -> None:
    """A table of every tenant with its phase, version and failing conditions."""
    try:
        client = connect(kubeconfig)
        tenants = call(lambda: client.list(labels.API_VERSION, labels.KIND))
    except CliError as exc:
        raise _fail(str(exc)) from None
    table = Table("NAME", "PHASE", "READY", "VERSION", "URL", "PROBLEMS")
    for tenant in sorted(tenants, key=lambda t: t["metadata"]["name"]):
        status = tenant.get("status") or {}
        problems = [
            f"{c['type']}: {c.get('reason')}" for c in status.get("conditions") or [] if c.get("status") != "True"
        ]
        table.add_row(
            tenant["metadata"]["name"],
            status.get("phase") or "Pending",
            ready_condition(tenant).get("status", "Unknown"),
            status.get("version") or "-",
            status.get("url") or "-",
            ", ".join(problems) or "-",
        )
    console.print(table)


@app.command()
def get(
    name: str,
    kubeconfig: KubeconfigOpt = None,
    output: Annotated[str, typer.Option("-o", "--output", help="table or yaml")] = "table",
) -> None:
    """Show one tenant: spec summary, status and every condition."""
    _check_name(name)
    try:
        tenant = get_tenant(connect(kubeconfig), name)
    except CliError as exc:
        raise _fail(str(exc)) from None
    if output == "yaml":
        typer.echo(yaml.safe_dump(tenant, sort_keys=False), nl=False)
        return
    spec, status = tenant.get("spec") or {}, tenant.get("status") or {}
    console.print(f"[bold]{name}[/] — {spec.get('displayName', '')}")
    for key in ("phase", "version", "url", "namespace"):
        console.print(f"  {key}: {status.get(key, '-')}")
    console.print(f"  size: {spec.get('size')}  suspended: {spec.get('suspended')}")
    console.print(
        f"  deletionPolicy: {spec.get('deletionPolicy')}  deletionProtection: {spec.get('deletionProtection')}"
    )
    table = Table("CONDITION", "STATUS", "REASON", "MESSAGE", "SINCE")
    for cond in status.get("conditions") or []:
        table.add_row(
            cond["type"],
            cond["status"],
            cond.get("reason", ""),
            cond.get("message", ""),
            cond.get("lastTransitionTime", ""),
        )
    console.print(table)


def _set_suspended(name: str, suspended: bool, kubeconfig: str | None, wait: bool, timeout: float) -> None:
    _check_name(name)
    try:
        client = connect(kubeconfig)
        get_tenant(client, name)
        call(lambda: client.merge_patch(labels.API_VERSION, labels.KIND, name, {"spec": {"suspended": suspended}}))
        console.print(f"{name}: suspended={str(suspended).lower()}")
        if wait:
            done = wait_for_phase(client, name, {"Suspended"} if suspended else {"Ready"}, timeout, console)
            console.print(f"[green]{name} is {done['status']['phase']}[/]")
    except CliError as exc:
        raise _fail(str(exc)) from None


@app.command()
def suspend(name: str, kubeconfig: KubeconfigOpt = None, wait: WaitOpt = True, timeout: TimeoutOpt = 300) -> None:
    """Scale every workload of a tenant to zero; all data and secrets are kept."""
    _set_suspended(name, True, kubeconfig, wait, timeout)


@app.command()
def resume(name: str, kubeconfig: KubeconfigOpt = None, wait: WaitOpt = True, timeout: TimeoutOpt = 600) -> None:
    """Bring a suspended tenant back."""
    _set_suspended(name, False, kubeconfig, wait, timeout)


@app.command()
def delete(
    name: str,
    kubeconfig: KubeconfigOpt = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    wait: WaitOpt = True,
    timeout: TimeoutOpt = 300,
) -> None:
    """Retire a tenant. Shows what its deletion policy will do to the data and asks first."""
    _check_name(name)
    try:
        client = connect(kubeconfig)
        spec: dict[str, Any] = get_tenant(client, name).get("spec") or {}
        policy = spec.get("deletionPolicy", "Retain")
        if spec.get("deletionProtection", True):
            raise CliError(
                f"{name} has deletionProtection: true, so deletion would be refused. "
                f"Set spec.deletionProtection to false first (deletionPolicy is {policy})."
            )
        effect = (
            "namespace, Secrets and volumes are KEPT (labelled for recovery)"
            if policy == "Retain"
            else "EVERYTHING is deleted: messages, files, secrets, volumes"
        )
        console.print(f"Deleting [bold]{name}[/] with deletionPolicy [bold]{policy}[/]: {effect}.")
        if not yes and not typer.confirm("Proceed?", default=False):
            raise typer.Exit(1)
        call(lambda: client.delete(labels.API_VERSION, labels.KIND, name))
        if wait:
            _wait_gone(client, name, timeout)
        console.print(f"[green]{name} deleted[/] ({policy})")
    except CliError as exc:
        raise _fail(str(exc)) from None


def _wait_gone(client: Any, name: str, timeout: float) -> None:
    import time

    deadline = time.monotonic() + timeout
    with console.status(f"waiting for {name} to be finalized…"):
        while call(lambda: client.get(labels.API_VERSION, labels.KIND, name)) is not None:
            if time.monotonic() > deadline:
                raise CliError(f"timed out after {timeout:.0f}s; `soa tenant get {name}` shows why")
            time.sleep(1)
