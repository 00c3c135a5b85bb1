"""`leeroo-local remove ID`: take an expert out of the user's catalog (files kept unless
--delete-files)."""

from __future__ import annotations

import typer

from .common import echo_json


def register(app: typer.Typer) -> None:
    app.command("remove")(remove)


def remove(
    expert_id: str = typer.Argument(..., metavar="ID", help="Expert id (see `experts`)."),
    delete_files: bool = typer.Option(False, "--delete-files", help="Also delete its GGUF "
                                      "files (never those of the Ollama store)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Remove an added (or hand-written) expert from your catalog, and from the universe."""
    from ..provision.remove_expert import remove as remove_expert

    result = remove_expert(expert_id, delete_files=delete_files)
    if as_json:
        echo_json(result.model_dump())
        return
    typer.echo(f"removed {expert_id} from {result.catalog_file}")
    if result.universe:
        typer.echo(f"universe now: {', '.join(result.universe)}")
    for path in result.deleted:
        typer.echo(f"deleted {path}")
    for path in result.kept:
        typer.echo(f"kept {path}")
