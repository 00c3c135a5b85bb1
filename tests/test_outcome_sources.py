"""Which outcomes fit and policy training read (outcome_sources): a folder, the store, the
shipped data; and the degradation model a fit scales by."""

from __future__ import annotations

import numpy as np
import pytest
from outcome_folder import CATALOG_COLUMNS, write_folder

from leeroo_local import paths
from leeroo_local.errors import DataError
from leeroo_local.fit.outcome_sources import (SHIPPED_LABEL, fit_degradation, fit_outcomes,
                                          training_matrix)
from leeroo_local.store import open_db
from leeroo_local.store.evaluations import import_folder
from leeroo_local.store.quant_measurements import record_measurement


@pytest.fixture
def folder(tmp_path):
    scores = np.array([[1, 0], [0, 1], [1, 1]], dtype=np.float32)
    return write_folder(tmp_path / "data", scores, list(CATALOG_COLUMNS[:2]))


def test_fit_outcomes_reads_a_folder_the_store_or_the_shipped_data(folder):
    matrix, label = fit_outcomes(folder)
    assert label == str(folder) and matrix.experts == list(CATALOG_COLUMNS[:2])
    assert set(matrix.questions) == {"q0", "q1", "q2"}  # the router reads the texts
    db = open_db()
    import_folder(db, folder, "mine")
    stored, label = fit_outcomes(db=db)
    assert label == "evaluation store" and sorted(stored.question_ids) == ["q0", "q1", "q2"]
    assert stored.questions  # texts too
    shipped, label = fit_outcomes()
    assert label == SHIPPED_LABEL and len(shipped.question_ids) > 100
    with pytest.raises(DataError, match="not both"):
        fit_outcomes(folder, db)


def test_fit_degradation_never_creates_the_store():
    assert fit_degradation() is None and not paths.db_path().exists()
    db = open_db()
    assert fit_degradation().lookup("Q4_K_M").kind == "table"  # a store with no measurement
    record_measurement(db, dict(expert="llama-3.1-8b", quant="Q4_K_M", reference_quant="F16",
                                candidate_path="/m/a.gguf", candidate_type="Q4_K_M",
                                reference_path="/m/f16.gguf", reference_type="F16",
                                tokens_scored=510, mc_questions=50, mc_agreed=40))
    assert fit_degradation(db).lookup("Q4_K_M", expert="llama-3.1-8b").kind == "quant eval"


def test_training_matrix_takes_one_source(folder):
    assert training_matrix(folder).experts == list(CATALOG_COLUMNS[:2])
    db = open_db(":memory:")
    import_folder(db, folder, "mine")
    assert len(training_matrix(store="all", db=db).question_ids) == 3
    assert len(training_matrix(store="mine", db=db).question_ids) == 3
    with pytest.raises(DataError):
        training_matrix(store="nobody", db=db)  # no rows of that source
    for args in ({}, {"data": folder, "store": "all"}):
        with pytest.raises(DataError, match="exactly one"):
            training_matrix(**args)
