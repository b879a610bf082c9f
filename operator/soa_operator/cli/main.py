"""The `soa` command."""

from __future__ import annotations

import typer

from soa_operator.cli import operator_cmd, tenant
from soa_platform import cli as platform_cli

app = typer.Typer(help="SOA: secure office workspaces for every ministry.", no_args_is_help=True)
app.add_typer(tenant.app, name="tenant")
app.add_typer(operator_cmd.app, name="operator")
app.add_typer(operator_cmd.crd_app, name="crd")
# the platform's processes (api, worker, beat, migrate, up, …) share the one `soa` command and image
platform_cli.register(app)

if __name__ == "__main__":
    app()
