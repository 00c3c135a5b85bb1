"""Open the store: one SQLite file (WAL mode) with its migrations applied.

Nothing is opened at import; callers pass the Database along (no module-level connection).
"""

from __future__ import annotations

import contextlib
import fcntl
import re
import sqlite3
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from sqlite_utils import Database

from .. import paths
from ..errors import ConfigError
from .migrations import MIGRATIONS, Migration

_NAME = re.compile(r"^m\d{3}_[a-z0-9]+(_[a-z0-9]+)+$")


def open_db(path: str | Path | None = None, migrations: Sequence[Migration] | None = None,
            shared: bool = False) -> Database:
    """The store at `path` (default: paths.db_path(); ":memory:" for a throwaway one), migrated.

    `shared`: the connection may be used from several threads (the caller serialises writes).
    """
    if str(path) == ":memory:":
        db = Database(sqlite3.connect(":memory:", check_same_thread=not shared))
    else:
        file = Path(path) if path else paths.db_path()
        file.parent.mkdir(parents=True, exist_ok=True)
        db = Database(sqlite3.connect(str(file), check_same_thread=not shared, timeout=30))
        # Several threads or processes may open the same file at once (a server's first
        # requests, a CLI beside a server): switch to WAL and migrate under one file lock.
        with _exclusive(file.with_name(file.name + ".lock")):
            db.enable_wal()
            migrate(db, MIGRATIONS if migrations is None else migrations)
        return db
    migrate(db, MIGRATIONS if migrations is None else migrations)
    return db


@contextlib.contextmanager
def _exclusive(lock_path: Path):
    with lock_path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def migrate(db: Database, migrations: Sequence[Migration]) -> list[str]:
    """Apply, in order, the migrations this database has not recorded; returns their names."""
    names = [fn.__name__ for fn in migrations]
    bad = [n for n in names if not _NAME.match(n)]
    if bad or len(set(names)) != len(names) or names != sorted(names):
        raise ConfigError(f"migrations must be unique, ordered mNNN_verb_noun names: {names}")
    if "_migrations" not in db.table_names():
        db["_migrations"].create({"name": str, "applied_at": str}, pk="name")
    done = {row["name"] for row in db["_migrations"].rows}
    applied = []
    for fn in migrations:
        if fn.__name__ in done:
            continue
        fn(db)
        db["_migrations"].insert(
            {"name": fn.__name__, "applied_at": datetime.now(timezone.utc).isoformat()}
        )
        applied.append(fn.__name__)
    return applied
