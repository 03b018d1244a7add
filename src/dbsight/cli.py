"""The ``dbsight`` command line."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console

from . import __version__

app = typer.Typer(
    name="dbsight",
    help="Database observability for Python web services.",
    no_args_is_help=True,
    add_completion=False,
)


@app.command()
def example(
    dsn: Annotated[
        str | None,
        typer.Option(help="PostgreSQL to use; by default an embedded one is started and removed."),
    ] = None,
    orders: Annotated[int, typer.Option(min=1_000, help="Rows in the sample orders table.")] = 200_000,
    slow_ms: Annotated[
        float, typer.Option(min=0.001, help="Slow-query threshold in milliseconds.")
    ] = 10.0,
) -> None:
    """Run an end-to-end example: real clients instrumented, workload, what dbsight saw."""
    from ._example import ExampleConfig, run_example

    run_example(ExampleConfig(dsn=dsn, orders=orders, slow_query_threshold_ms=slow_ms))


@app.command()
def analyze(
    statement: Annotated[str, typer.Argument(help="The SQL text to analyse.")],
    dialect: Annotated[str, typer.Option(help="postgresql, mysql or sqlite.")] = "postgresql",
) -> None:
    """Show how dbsight classifies a statement: normalized text, fingerprint, tables, routing."""
    from .sql import analyze as analyze_sql

    info = analyze_sql(statement, dialect)
    Console().print_json(
        json.dumps(
            {
                "normalized": info.normalized,
                "fingerprint": info.fingerprint,
                "operation": info.operation,
                "tables": list(info.tables),
                "read_only": info.read_only,
            }
        )
    )


@app.command()
def version() -> None:
    """Print dbsight's version."""
    typer.echo(__version__)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
