"""Self-play's state in the store: rounds, their questions, and the tasks (question x expert).

A round's plan is written whole before anything is evaluated, and each task is marked in the
same transaction that writes its outcome, so a round stopped at any point resumes with exactly
the tasks that are still pending: nothing evaluated is lost or evaluated twice.

Kinds of round: `validation` (number 0, the fixed set the policy is judged on), `round`
(numbered 1, 2, ...), `onboard` (a new expert run on stored questions).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlite_utils import Database

from .evaluations import Outcome, insert_outcome

PENDING, SCORED, UNSCORABLE, FAILED = "pending", "scored", "unscorable", "failed"


@dataclass(frozen=True)
class Task:
    """One expert to run on one question of a round, and how it was chosen."""

    id: int
    round_id: int
    question_id: str
    expert: str  # catalog id
    stored_as: str  # the name its outcomes are stored under (the catalog's data_column, else id)
    quant: str
    chosen_by: str
    status: str = PENDING
    score: float | None = None


@dataclass(frozen=True)
class PlannedTask:
    question_id: str
    expert: str
    stored_as: str
    quant: str
    chosen_by: str


def now() -> str:
    return datetime.now(timezone.utc).isoformat()


def create_round(db: Database, kind: str, number: int, config: dict, questions: Sequence[dict],
                 tasks: Iterable[PlannedTask], rejected: int = 0) -> int:
    """Write a round, its questions (added to the questions table when new) and its tasks in one
    transaction; returns the round's id."""
    with db.conn:
        cur = db.conn.execute(
            "INSERT INTO selfplay_rounds (kind, number, status, source, evaluator, judge, "
            "generator, seed, config, questions, rejected, started_at) "
            "VALUES (?, ?, 'evaluating', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (kind, number, config.get("source"), config.get("evaluator"), config.get("judge"),
             config.get("generator"), config.get("seed"), json.dumps(config), len(questions),
             rejected, now()))
        round_id = int(cur.lastrowid)
        db.conn.executemany(
            "INSERT OR IGNORE INTO questions (id, text, options, answer, category, origin, "
            "source, generator) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(q["id"], q["text"], json.dumps(q.get("options") or []), q.get("answer"),
              q.get("category"), q.get("origin"), q.get("source"), q.get("generator"))
             for q in questions])
        db.conn.executemany(
            "INSERT INTO selfplay_questions (round_id, question_id, position) VALUES (?, ?, ?)",
            [(round_id, q["id"], i) for i, q in enumerate(questions)])
        add_tasks(db, round_id, tasks, _in_transaction=True)
    return round_id


def add_tasks(db: Database, round_id: int, tasks: Iterable[PlannedTask],
              _in_transaction: bool = False) -> int:
    """Add tasks to a round (those already planned are ignored); returns how many were new."""
    rows = [(round_id, t.question_id, t.expert, t.stored_as, t.quant, t.chosen_by, PENDING)
            for t in tasks]
    sql = ("INSERT OR IGNORE INTO selfplay_tasks (round_id, question_id, expert, stored_as, quant, "
           "chosen_by, status) VALUES (?, ?, ?, ?, ?, ?, ?)")
    before = db.conn.total_changes
    if _in_transaction:
        db.conn.executemany(sql, rows)
    else:
        with db.conn:
            db.conn.executemany(sql, rows)
    return db.conn.total_changes - before


def get_round(db: Database, kind: str, number: int) -> dict | None:
    rows = list(db.query("SELECT * FROM selfplay_rounds WHERE kind = ? AND number = ?",
                         [kind, number]))
    return _decoded(rows[0]) if rows else None


def _decoded(row: dict) -> dict:
    row = dict(row)
    row["config"] = json.loads(row["config"] or "{}")
    row["report"] = json.loads(row["report"]) if row.get("report") else None
    return row


def rounds(db: Database, kind: str = "round") -> list[dict]:
    """Rounds of a kind, in order."""
    return [_decoded(r) for r in db.query(
        "SELECT * FROM selfplay_rounds WHERE kind = ? ORDER BY number", [kind])]


def unfinished(db: Database, kind: str = "round") -> dict | None:
    """The latest round of `kind` that is not done (interrupted), if any."""
    rows = list(db.query("SELECT * FROM selfplay_rounds WHERE kind = ? AND status != 'done' "
                         "ORDER BY number DESC LIMIT 1", [kind]))
    return _decoded(rows[0]) if rows else None


def last_number(db: Database, kind: str = "round") -> int:
    row = db.execute("SELECT MAX(number) FROM selfplay_rounds WHERE kind = ?", [kind]).fetchone()
    return int(row[0] or 0)


def update_round(db: Database, round_id: int, **fields) -> None:
    if "report" in fields and not isinstance(fields["report"], (str, type(None))):
        fields["report"] = json.dumps(fields["report"])
    sets = ", ".join(f"{k} = ?" for k in fields)
    with db.conn:
        db.conn.execute(f"UPDATE selfplay_rounds SET {sets} WHERE id = ?", [*fields.values(), round_id])


def question_ids(db: Database, round_id: int) -> list[str]:
    return [r[0] for r in db.execute(
        "SELECT question_id FROM selfplay_questions WHERE round_id = ? ORDER BY position",
        [round_id]).fetchall()]


def tasks(db: Database, round_id: int, status: str | None = None) -> list[Task]:
    """A round's tasks in plan order (question position, then expert as planned)."""
    where, params = "t.round_id = ?", [round_id]
    if status:
        where += " AND t.status = ?"
        params.append(status)
    sql = ("SELECT t.id, t.round_id, t.question_id, t.expert, t.stored_as, t.quant, t.chosen_by, "
           "t.status, t.score FROM selfplay_tasks t JOIN selfplay_questions q "
           "ON q.round_id = t.round_id AND q.question_id = t.question_id "
           f"WHERE {where} ORDER BY q.position, t.id")
    return [Task(*row) for row in db.execute(sql, params).fetchall()]


def complete_task(db: Database, task: Task, status: str, outcome: Outcome | None = None,
                  seconds: float = 0.0, energy_j: float = 0.0, energy_method: str = "",
                  error: str | None = None) -> None:
    """Mark a task done and, when it was scored, write its outcome: one transaction, so an
    interruption leaves either both or neither."""
    with db.conn:
        outcome_id = insert_outcome(db.conn, outcome) if outcome is not None else None
        db.conn.execute(
            "UPDATE selfplay_tasks SET status = ?, score = ?, outcome_id = ?, seconds = ?, "
            "energy_j = ?, energy_method = ?, error = ?, done_at = ? WHERE id = ?",
            (status, outcome.score if outcome is not None else None, outcome_id, seconds,
             energy_j, energy_method, error, now(), task.id))


def totals(db: Database, round_id: int) -> dict:
    """Counts by status, seconds and joules of a round's tasks."""
    out = {PENDING: 0, SCORED: 0, UNSCORABLE: 0, FAILED: 0}
    for status, n in db.execute("SELECT status, COUNT(*) FROM selfplay_tasks WHERE round_id = ? "
                                "GROUP BY status", [round_id]).fetchall():
        out[status] = n
    seconds, joules, methods = db.execute(
        "SELECT COALESCE(SUM(seconds), 0), COALESCE(SUM(energy_j), 0), "
        "GROUP_CONCAT(DISTINCT energy_method) FROM selfplay_tasks WHERE round_id = ?",
        [round_id]).fetchone()
    return {**out, "seconds": float(seconds), "energy_j": float(joules),
            "energy_methods": sorted(m for m in (methods or "").split(",") if m)}


def set_signal(db: Database, round_id: int, spreads: dict[str, float | None],
               threshold: float) -> None:
    """Store each question's spread (max - min score over the experts run on it) and whether it
    separates experts (signal 1), does not (0), or cannot tell (NULL: fewer than two scores)."""
    rows = [(s, None if s is None else int(s >= threshold), round_id, qid)
            for qid, s in spreads.items()]
    with db.conn:
        db.conn.executemany("UPDATE selfplay_questions SET spread = ?, signal = ? "
                            "WHERE round_id = ? AND question_id = ?", rows)


def planned_question_ids(db: Database, kinds: Sequence[str] = ("round", "validation")) -> set[str]:
    """Questions any round of these kinds has used."""
    sql = (f"SELECT q.question_id FROM selfplay_questions q JOIN selfplay_rounds r ON r.id = q.round_id "
           f"WHERE r.kind IN ({', '.join('?' * len(kinds))})")
    return {r[0] for r in db.execute(sql, list(kinds)).fetchall()}


def low_signal_question_ids(db: Database) -> set[str]:
    """Self-play questions on which every expert run scored alike (signal 0) and no round found
    a separation: the questions training leaves out."""
    sql = ("SELECT q.question_id FROM selfplay_questions q JOIN selfplay_rounds r ON r.id = q.round_id "
           "WHERE r.kind = 'round' GROUP BY q.question_id "
           "HAVING MAX(COALESCE(q.signal, 1)) = 0")
    return {r[0] for r in db.execute(sql).fetchall()}


def evaluated_columns(db: Database, question_ids: Iterable[str]) -> dict[str, set[tuple[str, str | None]]]:
    """For each question: the (column, quant) pairs the store has outcomes of."""
    wanted = list(question_ids)
    out: dict[str, set[tuple[str, str | None]]] = {q: set() for q in wanted}
    for i in range(0, len(wanted), 500):
        chunk = wanted[i:i + 500]
        for qid, expert, quant in db.execute(
                f"SELECT DISTINCT question_id, expert, quant FROM outcomes WHERE question_id IN "
                f"({', '.join('?' * len(chunk))})", chunk).fetchall():
            out[qid].add((expert, quant))
    return out
