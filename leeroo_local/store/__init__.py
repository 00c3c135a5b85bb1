"""The SQLite store: named migrations (db, migrations) and the evaluation store (evaluations).

A later runtime layer adds its request logs here, by appending migrations to migrations.MIGRATIONS.
"""

from .db import migrate, open_db

__all__ = ["migrate", "open_db"]
