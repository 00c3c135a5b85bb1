"""`leeroo-local logs`: the latest requests from the SQLite log."""

from __future__ import annotations

import json
import sqlite3

import typer

from .common import echo_json


def register(app: typer.Typer) -> None:
    app.command("logs")(logs)


def logs(
    n: int = typer.Option(20, "-n", min=1, help="How many requests, newest first."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show the latest requests: expert, timings, tokens, energy, errors."""
    from .. import paths
    from ..diskerrors import database_disk_error, disk_error
    from ..errors import HomeError
    from ..preflight import database_problem
    from ..store.requests import RequestLog

    try:
        log = RequestLog()
    except (sqlite3.Error, OSError) as exc:
        db = paths.db_path()
        disk = disk_error(exc, db) if isinstance(exc, OSError) else database_disk_error(exc, db)
        if disk is not None:  # the disk refuses, the file may be fine
            raise disk from None
        if problem := database_problem():
            raise HomeError(f"the request log cannot be read ({problem}); `leeroo-local "
                            f"serve`, `run` or `chat` moves the damaged file aside and starts a "
                            f"new one") from None
        raise HomeError(f"cannot open the request log {db}: {exc}") from None
    try:
        rows = log.recent(n)
    finally:
        log.close()
    if as_json:
        for row in rows:
            row["route_scores"] = json.loads(row["route_scores"] or "{}")
            row["messages"] = json.loads(row["messages"]) if row["messages"] else None
        echo_json(rows)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("id", "time", "expert", "load s", "ttft s", "tok/s", "tokens", "energy", "result")
    for r in rows:
        energy = f"{r['energy_j']:.1f} J {r['energy_method'][:4]}." if r["energy_j"] is not None else ""
        outcome = r["error"] or (r["response"] or "")[:40].replace("\n", " ")
        table.add_row(str(r["id"]), r["created_at"][11:19], f"{r['expert'] or ''}",
                      _f(r["load_s"]), _f(r["ttft_s"]), _f(r["tokens_per_s"], 1),
                      f"{r['prompt_tokens'] or 0}+{r['completion_tokens'] or 0}", energy, outcome)
    Console().print(table)


def _f(value, digits: int = 2) -> str:
    return "" if value is None else f"{value:.{digits}f}"
