"""`leeroo-local outcomes`: the evaluation store (import a data folder, list what it holds)."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import echo_json

outcomes_app = typer.Typer(help="The evaluation store: outcomes of experts on questions.",
                           no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(outcomes_app, name="outcomes")


@outcomes_app.command("import")
def import_(
    folder: Path = typer.Argument(None, help="Data folder (default: the shipped folder of --source, "
                                  "else the shipped MMLU-Pro outcomes)."),
    source: str = typer.Option(None, "--source", help="Label of these rows (default: folder name; "
                               "shipped: mmlu-pro-dev, llmrouter-dev, starter-mmlu-pro)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Copy a folder's outcomes into the store, replacing earlier rows of the same source."""
    from ..store import open_db
    from ..store.evaluations import import_folder

    summary = import_folder(open_db(), folder, source)
    if as_json:
        echo_json(summary.__dict__)
        return
    typer.echo(f"imported {summary.outcomes} outcomes of {summary.experts} experts on "
               f"{summary.questions} questions as source {summary.source!r}")


@outcomes_app.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """The sources in the store, with their sizes."""
    from ..store import open_db
    from ..store.evaluations import list_sources

    rows = list_sources(open_db())
    if as_json:
        echo_json(rows)
        return
    if not rows:
        typer.echo("the evaluation store is empty; add outcomes with `leeroo-local outcomes import`")
    for r in rows:
        typer.echo(f"{r['source']}: {r['outcomes']} outcomes, {r['questions']} questions, "
                   f"{r['columns']} expert columns (updated {r['updated']})")
