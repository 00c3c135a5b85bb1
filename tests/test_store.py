"""The SQLite store: migrations from a blank database and as an upgrade; the evaluation store."""

from __future__ import annotations

import numpy as np
import pytest
from outcome_folder import random_scores, write_folder

from leeroo_local import paths
from leeroo_local.errors import ConfigError, DataError
from leeroo_local.store.outcomes import load_matrix
from leeroo_local.store import migrate, open_db
from leeroo_local.store.evaluations import (
    Outcome, import_folder, list_sources, read_matrix, record_outcomes,
)
from leeroo_local.store.migrations import MIGRATIONS


def test_blank_database_gets_every_migration_in_wal_mode():
    db = open_db()
    assert paths.db_path().exists()
    assert {"questions", "outcomes", "_migrations"} <= set(db.table_names())
    assert [r["name"] for r in db["_migrations"].rows] == [m.__name__ for m in MIGRATIONS]
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert set(db["outcomes"].columns_dict) >= {
        "question_id", "expert", "quant", "score", "source", "round", "evaluator", "created_at"}
    assert migrate(db, MIGRATIONS) == []  # nothing left to apply


def test_upgrade_applies_only_the_new_migrations(tmp_path):
    path = tmp_path / "old.db"
    old = open_db(path, migrations=MIGRATIONS[:1])
    assert "outcomes" not in old.table_names()
    old["questions"].insert({"id": "q1", "text": "kept?"})

    def m999_create_extra(db):
        db["extra"].create({"id": int}, pk="id")

    db = open_db(path, migrations=[*MIGRATIONS, m999_create_extra])
    assert {"outcomes", "extra"} <= set(db.table_names())
    assert db["questions"].get("q1")["text"] == "kept?"
    assert [r["name"] for r in db["_migrations"].rows][-1] == "m999_create_extra"


def test_migration_names_are_checked():
    def not_a_name(db):
        pass

    with pytest.raises(ConfigError, match="mNNN_verb_noun"):
        open_db(":memory:", migrations=[not_a_name])


@pytest.fixture
def folder(tmp_path):
    scores = random_scores(30, 3, seed=5, missing=0.1)
    return write_folder(tmp_path / "data", scores, ["A", "B", "B@Q4_K_M"])


def test_import_then_read_gives_back_the_folder(folder):
    db = open_db(":memory:")
    summary = import_folder(db, folder)
    original = load_matrix(folder)
    assert summary.source == "data"
    assert summary.outcomes == int((~np.isnan(original.scores)).sum())
    back = read_matrix(db)
    assert back.question_ids == original.question_ids
    assert back.experts == original.experts
    np.testing.assert_array_equal(np.isnan(back.scores), np.isnan(original.scores))
    np.testing.assert_allclose(np.nan_to_num(back.scores), np.nan_to_num(original.scores))
    assert back.questions["q3"]["options"] == ["a", "b", "c"]
    assert back.questions["q3"]["question"] == "question q3?"
    row = db.execute("SELECT quant FROM outcomes WHERE expert = 'B' AND quant IS NOT NULL").fetchone()
    assert row[0] == "Q4_K_M"


def test_reimport_replaces_its_source_and_selfplay_adds_up(folder):
    db = open_db(":memory:")
    import_folder(db, folder)
    first = db["outcomes"].count
    import_folder(db, folder)
    assert db["outcomes"].count == first
    record_outcomes(db, [
        Outcome("selfplay:1", "A", 1.0, "selfplay", round=1, evaluator="judge"),
        Outcome("selfplay:1", "A", 0.0, "selfplay", round=2, evaluator="judge"),
        Outcome("selfplay:1", "B", 0.5, "selfplay", quant="q4_k_m", round=1),
    ])
    sources = {r["source"]: r for r in list_sources(db)}
    assert sources["selfplay"]["outcomes"] == 3
    assert sources["data"]["outcomes"] == first
    both = read_matrix(db)
    i = both.question_ids.index("selfplay:1")
    assert both.scores[i, both.experts.index("A")] == pytest.approx(0.5)  # two rounds averaged
    assert both.scores[i, both.experts.index("B@Q4_K_M")] == pytest.approx(0.5)
    assert np.isnan(both.scores[i, both.experts.index("B")])
    only = read_matrix(db, sources=["selfplay"])
    assert only.question_ids == ["selfplay:1"]


def test_bad_scores_and_empty_store_are_refused():
    db = open_db(":memory:")
    with pytest.raises(DataError, match="no outcomes"):
        read_matrix(db)
    with pytest.raises(DataError, match="outside"):
        record_outcomes(db, [Outcome("q", "A", 2.0, "selfplay")])
