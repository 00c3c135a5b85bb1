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

from ..diskerrors import database_disk_error, disk_error
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


# The click that typer raises: typer >= 0.26 bundles its own copy, whose exceptions are not
# subclasses of the `click` package's; typer re-exports BadParameter from whichever it uses.
_CLICK = sys.modules[typer.BadParameter.__module__]


def main(argv: list[str] | None = None) -> None:
    """Console entry point: library errors, usage errors and a full or read-only disk become one
    clear line on stderr and their exit code (2 for usage, as click says), never a traceback."""
    try:
        app(args=argv, standalone_mode=False)
    except LeerooError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(130)
    except _CLICK.ClickException as exc:
        if line := _one_line(exc):  # none after the help a bare `leeroo-local` prints
            typer.echo(f"error: {line}", err=True)
        sys.exit(exc.exit_code)
    except Exception as exc:  # a write no library code expected to fail: the disk said no
        if (disk := _disk_error(exc)) is None:
            raise
        typer.echo(f"error: {disk}", err=True)
        sys.exit(disk.exit_code)


def _disk_error(exc: Exception):
    """The DiskError behind a stray OSError, or an SQLite error of a full or read-only home."""
    if isinstance(exc, OSError):
        return disk_error(exc)
    from .. import paths

    return database_disk_error(exc, paths.home() / "leeroo.db")


def _one_line(exc) -> str:
    """A usage error as one line: what is wrong, and where help is (`--help` of the command)."""
    message = " ".join(exc.format_message().split())
    ctx = getattr(exc, "ctx", None)
    if message and isinstance(exc, _CLICK.UsageError) and ctx is not None:
        return f"{message} (see `{ctx.command_path} --help`)"
    return message
