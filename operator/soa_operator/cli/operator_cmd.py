"""`soa operator run` and `soa crd generate`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Run the SOA operator.", no_args_is_help=True)
crd_app = typer.Typer(help="The SOATenant CustomResourceDefinition.", no_args_is_help=True)


@app.command()
def run(
    liveness: Annotated[
        str | None, typer.Option(help="kopf liveness endpoint, e.g. http://0.0.0.0:8080/healthz")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Watch every SOATenant in the cluster (current kubeconfig or in-cluster credentials)."""
    import logging

    import kopf

    from soa_operator import main  # noqa: F401 - registers the handlers
    from soa_operator.settings import get_settings
    from soa_operator.telemetry import setup_logging

    setup_logging(get_settings().log_format, logging.DEBUG if verbose else logging.INFO)
    kopf.run(clusterwide=True, standalone=True, liveness_endpoint=liveness)


@crd_app.command()
def generate(
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write here instead of stdout.")] = None,
) -> None:
    """Print the CRD generated from the SOATenant model (the source of truth)."""
    from soa_operator.api.crd import render_crd_yaml

    text = render_crd_yaml()
    if output:
        output.write_text(text)
    else:
        typer.echo(text, nl=False)
