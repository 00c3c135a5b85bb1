"""m005 (self-play provenance) as an upgrade, and the round store: plans, tasks, atomic writes."""

from __future__ import annotations

import pytest

from leeroo_local.errors import DataError
from leeroo_local.store import open_db
from leeroo_local.store import rounds as store
from leeroo_local.store.evaluations import Outcome, read_matrix, record_outcomes
from leeroo_local.store.migrations import MIGRATIONS


def test_m005_upgrades_a_store_with_outcomes_and_keeps_them(tmp_path):
    path = tmp_path / "old.db"
    names = [m.__name__ for m in MIGRATIONS]
    old = open_db(path, migrations=MIGRATIONS[: names.index("m005_add_selfplay_provenance")])
    old["questions"].insert({"id": "q1", "text": "old?"})
    old["outcomes"].insert({"question_id": "q1", "expert": "A", "score": 1.0, "source": "s",
                            "created_at": "2025-01-01"})
    db = open_db(path)
    assert {"selfplay_rounds", "selfplay_questions", "selfplay_tasks"} <= set(db.table_names())
    row = next(db["outcomes"].rows)
    assert row["score"] == 1.0 and row["generator"] is None and row["chosen_by"] is None
    record_outcomes(db, [Outcome("q1", "B", 0.0, "selfplay/x", round=1, evaluator="judge",
                                 generator="g", judge="j", chosen_by="explore")])
    new = list(db.query("SELECT * FROM outcomes WHERE expert = 'B'"))[0]
    assert (new["generator"], new["judge"], new["chosen_by"]) == ("g", "j", "explore")
    assert read_matrix(db).experts == ["A", "B"]


def _round(db):
    questions = [{"id": f"q{i}", "text": f"question {i}?", "options": ["a", "b"], "answer": "A"}
                 for i in range(3)]
    plan = [store.PlannedTask(q["id"], e, e, "F32", "all") for q in questions for e in ("x", "y")]
    return store.create_round(db, "round", 1, {"source": "s", "evaluator": "loglik"},
                              questions, plan)


def test_a_round_plan_is_stored_whole_and_tasks_are_ordered_by_question():
    db = open_db(":memory:")
    rid = _round(db)
    tasks = store.tasks(db, rid)
    assert [(t.question_id, t.expert) for t in tasks] == [
        (f"q{i}", e) for i in range(3) for e in ("x", "y")]
    assert store.unfinished(db)["number"] == 1 and store.last_number(db) == 1
    assert store.add_tasks(db, rid, [store.PlannedTask("q0", "x", "x", "F32", "all")]) == 0
    assert db["questions"].get("q1")["text"] == "question 1?"


def test_a_task_and_its_outcome_are_written_together_or_not_at_all():
    db = open_db(":memory:")
    rid = _round(db)
    first, second = store.tasks(db, rid)[:2]
    store.complete_task(db, first, store.SCORED, Outcome("q0", "x", 1.0, "s", "F32", round=1),
                        seconds=0.5, energy_j=2.0, energy_method="estimated")
    with pytest.raises(DataError):  # the outcome is refused: the task stays pending
        store.complete_task(db, second, store.SCORED, Outcome("q0", "y", 2.0, "s", "F32"))
    pending = store.tasks(db, rid, store.PENDING)
    assert second.id in {t.id for t in pending} and first.id not in {t.id for t in pending}
    assert db["outcomes"].count == 1
    totals = store.totals(db, rid)
    assert (totals["scored"], totals["pending"], totals["seconds"], totals["energy_j"]) == (1, 5, 0.5, 2.0)
