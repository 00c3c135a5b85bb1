"""The quant_measurements table: what `leeroo-local quant eval` measured, and what the fit reads.

Rows are appended; a file measured again keeps its history, and readers take the latest row per
candidate file (by SHA-256, else path).
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlite_utils import Database

from ..degradation import Agreement, DegradationModel, default_model, from_agreements
from ..errors import DataError

TABLE = "quant_measurements"


def record_measurement(db: Database, row: dict) -> int:
    """Append one measurement (the columns of m004_create_quant_measurements); its row id."""
    unknown = set(row) - set(db[TABLE].columns_dict)
    if unknown:
        raise DataError(f"unknown measurement field(s): {sorted(unknown)}")
    row = {"created_at": datetime.now(timezone.utc).isoformat(), **row}
    with db.conn:
        return db[TABLE].insert(row).last_pk


def list_measurements(db: Database, expert: str | None = None, latest: bool = False) -> list[dict]:
    """Measurements, newest first; `latest`: only the newest per candidate file."""
    where, args = ("expert = ?", [expert]) if expert else (None, None)
    rows = list(db[TABLE].rows_where(where, args, order_by="id desc"))
    if not latest:
        return rows
    seen: set[str] = set()
    out = []
    for r in rows:
        key = r["candidate_sha256"] or r["candidate_path"]
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


def agreements(db: Database) -> list[Agreement]:
    """The multiple-choice evidence of the latest measurement of each file, newest first."""
    return [Agreement(expert=r["expert"], quant=r["quant"] or r["candidate_type"],
                      reference_quant=r["reference_quant"] or r["reference_type"],
                      questions=r["mc_questions"] or 0, agreed=r["mc_agreed"] or 0)
            for r in list_measurements(db, latest=True)]


def degradation_model(db: Database) -> DegradationModel:
    """The degradation table calibrated by every stored measurement (the table alone if none)."""
    found = agreements(db)
    return from_agreements(found) if found else default_model()
