"""Several outcome sources in one evaluation store: the shipped mixed-task matrix beside
MMLU-Pro, fractions kept as scores, missing blocks left missing, kinds kept apart by source."""

from __future__ import annotations

import numpy as np

from leeroo_local.fit.outcome_sources import training_matrix
from leeroo_local.store.outcomes import load_matrix
from leeroo_local.policy.train import kinds_of, texts_of
from leeroo_local.store import open_db
from leeroo_local.store.evaluations import SHIPPED_FOLDERS, import_folder, list_sources


def test_the_mixed_task_matrix_is_shipped_and_imports_by_its_source_name():
    db = open_db(":memory:")
    summary = import_folder(db, None, "llmrouter-dev")
    assert summary.source == "llmrouter-dev" and summary.questions == 4439
    assert summary.experts == 9
    assert "Meta-Llama-3_1-8B-Instruct" in load_matrix().experts  # MMLU-Pro stays the default
    assert SHIPPED_FOLDERS["llmrouter-dev"] == "llmrouter_dev"
    matrix = training_matrix(store="llmrouter-dev", db=db)
    fractions = matrix.scores[(matrix.scores > 0) & (matrix.scores < 1)]
    assert len(fractions) > 1000  # F1 and coverage scores stay fractions, not 0/1


def test_two_sources_side_by_side_keep_their_missing_blocks_and_their_kinds(tmp_path):
    db = open_db(":memory:")
    import_folder(db, None, "llmrouter-dev")
    import_folder(db, None, "starter-mmlu-pro")
    assert {r["source"] for r in list_sources(db)} == {"llmrouter-dev", "starter-mmlu-pro"}
    matrix = training_matrix(store="llmrouter-dev,starter-mmlu-pro", db=db)
    assert len(matrix.question_ids) == 4439 + 400
    qwen = matrix.experts.index("qwen2.5-7b-instruct")
    starter = next(j for j, e in enumerate(matrix.experts) if e.startswith("gemma-3-270m"))
    src = np.array([matrix.questions[q]["outcome_source"] for q in matrix.question_ids])
    # a question trains only the experts that have an outcome for it: the other block is NaN
    assert np.isnan(matrix.scores[src == "starter-mmlu-pro", qwen]).all()
    assert np.isnan(matrix.scores[src == "llmrouter-dev", starter]).all()
    assert not np.isnan(matrix.scores[src == "llmrouter-dev", qwen]).any()
    rows, _ = texts_of(matrix)
    kinds = kinds_of(matrix, rows)
    assert "llmrouter-dev:math" in kinds and "starter-mmlu-pro:math" in kinds
    one = training_matrix(store="llmrouter-dev", db=db)
    assert "math" in kinds_of(one, texts_of(one)[0])  # one source: the category alone


def test_one_expert_from_two_sources_is_one_column_of_the_catalog_policy():
    from leeroo_local.catalog import load_catalog
    from leeroo_local.store.outcomes import OutcomeMatrix
    from leeroo_local.policy.naming import catalog_names

    nan = np.nan
    scores = np.array([[1, nan, 0], [0, nan, 1], [nan, 1, nan], [nan, 0.5, nan], [1, 0, 1]],
                      dtype=np.float32)
    matrix = OutcomeMatrix([f"q{i}" for i in range(5)],
                           ["Meta-Llama-3_1-8B-Instruct", "llama-3.1-8b-instruct", "Yi-6B"], scores)
    sub, rename, _, _ = catalog_names(matrix, load_catalog())
    assert sub.experts == ["Meta-Llama-3_1-8B-Instruct", "Yi-6B"]
    assert [rename[c] for c in sub.experts] == ["llama-3.1-8b-instruct", "yi-6b"]
    # each source's cells where it has them, their mean where both have one; Yi-6B untouched
    np.testing.assert_allclose(sub.scores[:, 0], [1, 0, 1, 0.5, 0.5])
    assert np.isnan(sub.scores[2:4, 1]).all()
