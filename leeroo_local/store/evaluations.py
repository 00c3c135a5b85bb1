"""The evaluation store: outcomes of experts on questions, from data folders and from self-play.

Rows are appended, never overwritten: several rounds or evaluators may score the same cell, and
`read_matrix` averages them. Importing a folder replaces the rows of its own source only, so
re-importing is safe and later self-play rounds (their own source) are kept.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from sqlite_utils import Database

from ..errors import DataError
from .outcomes import OutcomeMatrix, column_name, default_data_dir, load_matrix, split_column

SHIPPED_SOURCE = "mmlu-pro-dev"
# Outcome folders shipped in leeroo_local/data, by the source name they are stored under.
SHIPPED_FOLDERS = {SHIPPED_SOURCE: "mmlu_pro_dev", "starter-mmlu-pro": "starter_mmlu_pro",
                   "llmrouter-dev": "llmrouter_dev"}


@dataclass(frozen=True)
class Outcome:
    """One score of one expert (at a quantization, or full precision) on one question."""

    question_id: str
    expert: str
    score: float
    source: str
    quant: str | None = None
    round: int | None = None
    evaluator: str | None = None
    generator: str | None = None  # the expert that wrote the question (self-play)
    judge: str | None = None  # the expert that graded the answer (judge evaluator)
    chosen_by: str | None = None  # how self-play chose the expert: all, policy, explore, ...


@dataclass(frozen=True)
class ImportSummary:
    source: str
    questions: int
    outcomes: int
    experts: int


_COLUMNS = ("question_id", "expert", "quant", "score", "source", "round", "evaluator", "created_at",
            "generator", "judge", "chosen_by")
_INSERT = f"INSERT INTO outcomes ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def outcome_row(o: Outcome, now: str | None = None) -> tuple:
    """The outcomes row of `o` (columns in _COLUMNS order); DataError for a score outside [0, 1]."""
    if not 0.0 <= o.score <= 1.0:
        raise DataError(f"score {o.score} of {o.expert} on {o.question_id} is outside [0, 1]")
    return (o.question_id, o.expert, o.quant.upper() if o.quant else None, float(o.score),
            o.source, o.round, o.evaluator, now or _now(), o.generator, o.judge, o.chosen_by)


def insert_outcome(conn, o: Outcome) -> int:
    """Insert one outcome on `conn` inside the caller's transaction; returns its row id."""
    return int(conn.execute(_INSERT, outcome_row(o)).lastrowid)


def record_outcomes(db: Database, outcomes: Iterable[Outcome]) -> int:
    """Append outcomes (e.g. a self-play round); returns how many rows were written."""
    now = _now()
    rows = [outcome_row(o, now) for o in outcomes]
    with db.conn:
        db.conn.executemany(_INSERT, rows)
    return len(rows)


def import_folder(
    db: Database, folder: str | Path | None = None, source: str | None = None,
    evaluator: str | None = None,
) -> ImportSummary:
    """Copy a data folder (default: the shipped folder of `source`, else the shipped MMLU-Pro
    outcomes) into the store.

    The folder's previous rows (same source) are replaced; missing cells are not stored.
    """
    if not folder and source in SHIPPED_FOLDERS:
        folder = default_data_dir().parent / SHIPPED_FOLDERS[source]
    folder = Path(folder) if folder else default_data_dir()
    source = source or (SHIPPED_SOURCE if folder == default_data_dir() else folder.name)
    matrix = load_matrix(folder)
    now = _now()
    qrows = [
        {"id": qid, "text": str(rec.get("question", "")), "options": json.dumps(rec.get("options", [])),
         "answer": None if rec.get("answer") is None else str(rec.get("answer")),
         "category": rec.get("category"), "origin": rec.get("source"), "source": source}
        for qid, rec in matrix.questions.items()
    ]
    split = [split_column(c) for c in matrix.experts]
    qi, ej = np.nonzero(~np.isnan(matrix.scores))
    rows = [
        (matrix.question_ids[i], split[j][0], split[j][1], float(matrix.scores[i, j]), source,
         None, evaluator, now, None, None, None)
        for i, j in zip(qi.tolist(), ej.tolist())
    ]
    with db.conn:
        db.conn.execute("DELETE FROM outcomes WHERE source = ?", (source,))
        if qrows:
            db["questions"].upsert_all(qrows, pk="id")
        db.conn.executemany(_INSERT, rows)
    return ImportSummary(source, len(qrows), len(rows), len(matrix.experts))


def ensure_source(db: Database, source: str) -> ImportSummary | None:
    """Import a shipped outcome folder under its source name unless the store has it already
    (so the starter policy's measured outcomes live in the store on first use); None when
    nothing was imported."""
    if source not in SHIPPED_FOLDERS:
        return None
    if db.conn.execute("SELECT 1 FROM outcomes WHERE source = ? LIMIT 1", (source,)).fetchone():
        return None
    folder = default_data_dir().parent / SHIPPED_FOLDERS[source]
    if not folder.is_dir():
        return None
    return import_folder(db, folder, source)


def list_sources(db: Database) -> list[dict]:
    """Per source: rows, questions and experts stored, and the latest write."""
    sql = ("SELECT source, COUNT(*) AS outcomes, COUNT(DISTINCT question_id) AS questions, "
           "COUNT(DISTINCT expert || '@' || COALESCE(quant, '')) AS columns, "
           "MAX(created_at) AS updated FROM outcomes GROUP BY source ORDER BY source")
    return [dict(row) for row in db.query(sql)]


def read_matrix(
    db: Database, sources: Sequence[str] | None = None, with_questions: bool = True
) -> OutcomeMatrix:
    """The stored outcomes as a matrix: one column per expert (and per measured quantization,
    named `<expert>@<QUANT>`), cells averaged over rounds and evaluators, NaN where missing.
    """
    where, params = "", []
    if sources:
        where = f"WHERE source IN ({', '.join('?' * len(sources))})"
        params = list(sources)
    sql = (f"SELECT question_id, expert, quant, AVG(score), MIN(id) AS first FROM outcomes {where} "
           "GROUP BY question_id, expert, quant ORDER BY first")
    cells = db.conn.execute(sql, params).fetchall()
    if not cells:
        which = f" from source(s) {', '.join(sources)}" if sources else ""
        raise DataError(f"the evaluation store has no outcomes{which}; "
                        "add some with `leeroo-local outcomes import [DIR]`")
    qindex: dict[str, int] = {}
    cindex: dict[str, int] = {}
    for qid, expert, quant, _, _ in cells:
        qindex.setdefault(qid, len(qindex))
        cindex.setdefault(column_name(expert, quant), len(cindex))
    scores = np.full((len(qindex), len(cindex)), np.nan, dtype=np.float32)
    for qid, expert, quant, score, _ in cells:
        scores[qindex[qid], cindex[column_name(expert, quant)]] = score
    questions = _questions(db, list(qindex)) if with_questions else {}
    return OutcomeMatrix(list(qindex), list(cindex), scores, {}, questions)


def _questions(db: Database, ids: list[str]) -> dict[str, dict]:
    """Question records in the folder format (`question` holds the text, `options` a list)."""
    wanted = set(ids)
    out = {}
    for row in db["questions"].rows:
        if row["id"] in wanted:
            out[row["id"]] = {
                "id": row["id"], "question": row["text"], "options": json.loads(row["options"] or "[]"),
                "answer": row["answer"], "category": row["category"], "source": row["origin"],
                "outcome_source": row["source"],
            }
    return out
