"""The `leeroo-local` command: parse, call the library, render. Each command lives in its own module.

Every module of this package named `*_cmd` exposes `register(app)`; they are found by name, so a
new command is one new file. Heavy libraries (llama_cpp, onnxruntime, textual, fastapi) are
imported inside the commands that need them, so `leeroo-local --help` stays fast.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import typer

from ..errors import LeerooError

app = typer.Typer(
    name="leeroo-local",
    help="Orchestrate a pool of small quantized LLMs on one machine.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if _info.name.endswith("_cmd"):
        importlib.import_module(f"{__name__}.{_info.name}").register(app)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: library errors become one clear line and their exit code."""
    try:
        app(args=argv, standalone_mode=False)
    except LeerooError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:  # click usage errors arrive here in non-standalone mode
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise
