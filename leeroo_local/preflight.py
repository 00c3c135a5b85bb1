"""Checks that `serve`, `chat` and `run` make before they start, so that a broken home is one line
and exit 2 at once, never a server that answers 500 to every request.

The home must be writable with room to spare, config.toml, the catalog and the universe must
parse, and the database must open and pass SQLite's quick check. A damaged database is moved
aside under a new name (printed; nothing is deleted) and a fresh one is made.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from . import paths
from .diskerrors import database_disk_error, disk_error
from .errors import HomeError
from .runtime.service import Service
from .settings import Settings, load_settings
from .units import format_size

MIN_FREE_BYTES = 1 << 20
"""Room the home needs: a request log row is small, but a full disk fails every write."""


def check_home(home: Path | None = None) -> None:
    """HomeError unless the home (made if missing) takes a new file and has MIN_FREE_BYTES."""
    home = home or paths.home()
    try:
        home.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=home, prefix=".preflight-"):
            pass
        free = shutil.disk_usage(home).free
    except OSError as exc:
        raise disk_error(exc, home, paths.ENV_HOME) or HomeError(f"{home}: {exc}") from None
    if free < MIN_FREE_BYTES:
        raise HomeError(f"{home} has {format_size(free)} free: free at least "
                        f"{format_size(MIN_FREE_BYTES)} there, or set {paths.ENV_HOME} to a folder "
                        f"on another disk")


def check_database(path: Path | None = None) -> str | None:
    """Open the database and run SQLite's quick check; a damaged file (and its -wal and -shm) is
    moved aside. Returns a note saying where it went, or None when the database was sound."""
    path = path or paths.db_path()
    if not path.exists():
        return None
    problem = _damage(path)
    if problem is None:
        return None
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    aside = path.with_name(f"{path.name}.damaged-{stamp}")
    try:
        for suffix in ("", "-wal", "-shm"):
            part = Path(f"{path}{suffix}")
            if part.exists():
                os.replace(part, Path(f"{aside}{suffix}"))
    except OSError as exc:
        why = disk_error(exc, path.parent, paths.ENV_HOME) or exc
        raise HomeError(f"{path} is damaged ({problem}) and cannot be moved aside: {why}") from None
    return f"{path} was damaged ({problem}): moved to {aside}; a new database is made"


def choose_backend(settings: Settings, notify: Callable[[str], None]) -> str:
    """For serve: llama-server (continuous batching) when `auto` finds a binary, else the
    worker; said on one line, with how to get batching when it is not there."""
    from .backends.llama_server import find_llama_server

    found = find_llama_server(settings.llama_server)
    chosen = settings.local_backend
    if chosen == "auto":
        chosen = "llama-server" if found else "worker"
    if chosen == "llama-server":
        notify(f"backend: llama-server ({settings.llama_server_parallel} slots decode concurrent "
               f"requests together): {found or settings.llama_server or 'not found'}")
    elif settings.local_backend == "auto":
        notify("backend: worker (one request at a time per expert): no llama-server binary; "
               "`leeroo-local llama-server build` makes one for continuous batching")
    else:
        notify("backend: worker (local_backend = \"worker\")")
    return chosen


def database_problem(path: Path | None = None) -> str | None:
    """Why the database cannot be read (for `logs`, which reads and repairs nothing), or None."""
    path = path or paths.db_path()
    return _damage(path) if path.exists() else None


def _damage(path: Path) -> str | None:
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            rows = con.execute("pragma quick_check").fetchall()
        finally:
            con.close()
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc):  # another process writes it: sound, and busy
            return None
        return f"sqlite: {exc}"
    except sqlite3.DatabaseError as exc:
        return f"sqlite: {exc}"
    if rows != [("ok",)]:
        return f"sqlite's quick check: {'; '.join(str(r[0]) for r in rows[:3])}"
    return None


def start_service(client: str, notify: Callable[[str], None], batching: bool = False,
                  **overrides) -> Service:
    """The service for a command that answers prompts, after the checks: home, database, then
    config.toml, catalog and universe (read by the service), and the request log opened now, so
    that none of them first fails on a request. `notify` hears what was repaired, and, with
    `batching` (serve), which local backend runs and why."""
    check_home()
    note = check_database()
    if note:
        notify(note)
    settings = load_settings(**overrides)
    said: list[str] = []
    if batching:
        settings = settings.model_copy(update={"local_backend": choose_backend(settings,
                                                                               said.append)})
    service = Service(settings, client=client)  # a bad catalog or universe stops here, alone
    try:
        service.log  # noqa: B018 - opened (and migrated) now, not on the first request
    except (sqlite3.Error, OSError) as exc:
        service.close()
        db = paths.db_path()
        why = ((disk_error(exc, db) if isinstance(exc, OSError) else database_disk_error(exc, db))
               or f"{db}: {exc}")
        raise HomeError(f"cannot open the request log: {why}") from None
    for line in said:
        notify(line)
    return service
