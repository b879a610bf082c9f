"""The platform's process commands, added to the `soa` command: api, worker, beat, migrate,
healthcheck, admin and up."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from soa_platform.settings import PlatformSettings

console = Console(stderr=True)


def _settings() -> PlatformSettings:
    from pydantic import ValidationError

    try:
        return PlatformSettings()
    except ValidationError as error:
        for problem in error.errors():
            console.print(f"[red]settings:[/] {problem['msg']}")
        raise typer.Exit(2) from None


def _metrics_dir() -> str:
    """Where every api worker process writes its metrics (prometheus_client's multiprocess mode): set in
    the environment before uvicorn starts the workers, which read it when they import prometheus_client."""
    import os
    import tempfile

    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or tempfile.mkdtemp(prefix="soa-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    return path


def _init_storage(settings: PlatformSettings) -> None:
    import asyncio

    from soa_platform.files.bootstrap import init_storage
    from soa_platform.files.storage import StorageError

    try:
        report = asyncio.run(init_storage(settings, progress=console.print))
    except StorageError as error:
        console.print(f"[red]object store not ready: {error}[/]")
        raise typer.Exit(4) from None
    console.print(f"object store ready ({'changed' if report.changed else 'nothing to change'})")


def register(app: typer.Typer) -> None:
    """Add the platform's commands to the top-level `soa` app."""

    @app.command(help="Run the HTTP/WebSocket API (uvicorn).")
    def api(
        host: Annotated[str, typer.Option(help="address to listen on")] = "0.0.0.0",  # noqa: S104
        port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
        workers: Annotated[
            int, typer.Option(min=1, max=64, help="api processes; one uses at most one core (default: 1)")
        ] = 1,
    ) -> None:
        import uvicorn

        from soa_platform import metrics
        from soa_platform.logs import api_log_config

        settings = _settings()
        metrics.serve(settings.metrics_port, multiprocess_dir=_metrics_dir() if workers > 1 else None)
        uvicorn.run(
            "soa_platform.bootstrap:create_api", factory=True, host=host, port=port, proxy_headers=True,
            log_level="info", access_log=False, ws_max_size=65536, log_config=api_log_config(), workers=workers,
        )  # fmt: skip

    @app.command(help="Run a Celery worker.")
    def worker(
        concurrency: Annotated[int, typer.Option(min=1, help="task processes")] = 2,
        beat: Annotated[bool, typer.Option(help="also run the periodic scheduler (embedded default)")] = False,
    ) -> None:
        from soa_platform.worker.process import run_worker

        raise typer.Exit(run_worker(_settings(), concurrency=concurrency, beat=beat))

    @app.command(help="Run the Celery beat scheduler (periodic tasks).")
    def beat() -> None:
        from soa_platform.worker.process import run_beat

        raise typer.Exit(run_beat(_settings()))

    @app.command(help="Migrate the database to this release's schema (idempotent).")
    def migrate() -> None:
        from soa_platform.migrate import UnknownSchemaVersion, upgrade

        settings = _settings()
        try:
            upgrade(settings.sqlalchemy_url)
        except UnknownSchemaVersion as error:
            console.print(f"[red]{error}[/]")
            raise typer.Exit(3) from None
        console.print("database schema is current")
        if settings.storage_enabled and settings.storage_driver == "s3" and settings.s3_root_user.get_secret_value():
            _init_storage(settings)  # the chart's migration Job alone holds the object store's root credential

    @app.command(help="Exit 0 when the worker or beat process is alive (Kubernetes exec probe).")
    def healthcheck(kind: Annotated[str, typer.Argument(help="worker | beat")]) -> None:
        from soa_platform.worker.process import healthcheck as check

        if kind == "worker":
            raise typer.Exit(check("worker", _settings()))
        if kind == "beat":
            raise typer.Exit(check("beat", _settings()))
        console.print("[red]kind must be worker or beat[/]")
        raise typer.Exit(2)

    admin = typer.Typer(help="Tenant administration from the command line.", no_args_is_help=True)
    app.add_typer(admin, name="admin")

    @admin.command("create", help="Create the first admin (or make an account admin and reset its password).")
    def admin_create(
        email: Annotated[str, typer.Option(help="the admin's e-mail address")],
        password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
        name: Annotated[str, typer.Option(help="display name")] = "Administrator",
    ) -> None:
        from soa_platform.embedded import create_admin

        settings = _settings()
        try:
            create_admin(settings, email, password, name)
        except ValueError as error:
            console.print(f"[red]{error}[/]")
            raise typer.Exit(2) from None
        console.print(f"{email} is an admin of tenant {settings.tenant}")

    storage = typer.Typer(help="The tenant's object store.", no_args_is_help=True)
    app.add_typer(storage, name="storage")

    @storage.command(
        "init",
        help="Create the bucket, set its versioning and create the app's access key (idempotent; needs "
        "SOA_S3_ROOT_USER and SOA_S3_ROOT_PASSWORD for the s3 driver).",
    )
    def storage_init() -> None:
        _init_storage(_settings())

    @app.command(help="Run one tenant's whole platform on this machine (SQLite, local files, embedded broker).")
    def up(
        host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
        port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
        data_dir: Annotated[Path, typer.Option(help="where the database, files and secrets live")] = Path(".soa-data"),
    ) -> None:
        from soa_platform.embedded import run_embedded

        sys.exit(run_embedded(host=host, port=port, data_dir=data_dir, console=console))
