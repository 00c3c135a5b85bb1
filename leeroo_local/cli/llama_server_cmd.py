"""`leeroo-local llama-server`: build llama.cpp's server (continuous batching) and say which one
`serve` uses."""

from __future__ import annotations

import typer

llama_server_app = typer.Typer(help="llama.cpp's own server: the backend that batches requests.",
                               no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(llama_server_app, name="llama-server")


@llama_server_app.command("build")
def build(jobs: int = typer.Option(None, "--jobs", "-j", min=1,
                                   help="Compiler jobs (default: every core).")) -> None:
    """Build llama-server from the installed llama-cpp-python's sources (CPU; a few to twenty
    minutes), into $LEEROO_HOME/bin, where `serve` finds it."""
    from ..provision.llama_server import build as make

    last = {"stage": ""}

    def progress(stage: str, pct: int | None) -> None:
        if stage == "build" and pct is not None:
            typer.echo(f"\r[build {pct:3d}%]", nl=False, err=True)
        elif stage != last["stage"]:
            typer.echo(("\n" if last["stage"] == "build" else "") + f"[{stage}]", err=True)
        last["stage"] = stage

    path = make(progress, jobs)
    typer.echo(str(path))


@llama_server_app.command("where")
def where() -> None:
    """The llama-server binary `serve` would use (the setting, PATH, or one built here)."""
    from ..backends.llama_server import find_llama_server
    from ..settings import load_settings

    found = find_llama_server(load_settings().llama_server)
    if found is None:
        typer.echo("none: `leeroo-local llama-server build` makes one", err=True)
        raise typer.Exit(1)
    typer.echo(found)
