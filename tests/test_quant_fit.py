"""Measurements in the store reach the fit: per-pair factors, per-type calibration, the shown basis."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from leeroo_local.catalog import load_catalog
from leeroo_local.degradation import FACTORS, PRIOR_QUESTIONS, Agreement, from_agreements
from leeroo_local.fit.plan import FitBudget, build_candidates
from leeroo_local.store.outcomes import load_matrix
from leeroo_local.store import open_db
from leeroo_local.store.quant_measurements import (
    agreements, degradation_model, list_measurements, record_measurement,
)

GB = 10**9
N0 = PRIOR_QUESTIONS


def shrunk(n, measured, prior):
    return (n * measured + N0 * prior) / (n + N0)


def test_a_pair_factor_is_its_agreement_shrunk_toward_the_table():
    model = from_agreements([Agreement("x", "Q4_0", "F16", questions=50, agreed=40)])
    d = model.lookup("q4_0", expert="x")
    assert d.kind == "quant eval" and "40/50" in d.basis
    assert d.factor == pytest.approx(shrunk(50, 40 / 50, FACTORS["Q4_0"]))
    other = model.lookup("Q4_0", expert="y")  # another expert: the type, calibrated
    assert other.kind == "calibrated" and other.factor == pytest.approx(d.factor)
    assert model.lookup("Q8_0", expert="x").kind == "table"
    assert model.lookup("F16").factor == 1.0


def test_a_quantized_reference_chains_its_own_factor():
    # Q2_K measured against Q4_K_M; Q4_K_M measured against F16 (listed later: used first)
    ms = [Agreement("x", "Q2_K", "Q4_K_M", 30, 24), Agreement("x", "Q4_K_M", "F16", 60, 57)]
    model = from_agreements(ms)
    q4 = model.lookup("Q4_K_M", expert="x").factor
    assert q4 == pytest.approx(shrunk(60, 57 / 60, FACTORS["Q4_K_M"]))
    assert model.lookup("Q2_K", expert="x").factor == pytest.approx(
        shrunk(30, 24 / 30 * q4, FACTORS["Q2_K"]))
    # without a measurement of the reference, the table's factor stands in for it
    alone = from_agreements([Agreement("x", "Q2_K", "Q4_K_M", 30, 24)])
    assert alone.lookup("Q2_K", expert="x").factor == pytest.approx(
        shrunk(30, 24 / 30 * FACTORS["Q4_K_M"], FACTORS["Q2_K"]))


def test_types_pool_every_measurement_and_questions_weigh_in():
    ms = [Agreement("a", "Q3_K_S", "F16", 100, 90), Agreement(None, "Q3_K_S", "BF16", 20, 20)]
    model = from_agreements(ms)
    mean = (100 * 0.9 + 20 * 1.0) / 120
    assert model.lookup("Q3_K_S").factor == pytest.approx(shrunk(120, mean, FACTORS["Q3_K_S"]))
    assert "2 quant eval(s), 120 questions" in model.lookup("Q3_K_S").basis
    # no questions: no evidence, the table stands
    assert from_agreements([Agreement("a", "Q6_K", "F16", 0, 0)]).lookup("Q6_K").kind == "table"


def row(**kw) -> dict:
    base = dict(expert="llama-3.1-8b", quant="Q4_K_M", reference_quant="F16",
                candidate_path="/m/a.gguf", candidate_type="Q4_K_M", candidate_sha256="a" * 64,
                reference_path="/m/f16.gguf", reference_type="F16", tokens_scored=510,
                mc_questions=50, mc_agreed=40, mc_agreement=0.8, kl_mean=0.05)
    return {**base, **kw}


def test_the_store_keeps_history_and_reads_the_latest_per_file():
    db = open_db()
    assert "m004_create_quant_measurements" in {r["name"] for r in db["_migrations"].rows}
    first = record_measurement(db, row(mc_agreed=30))
    second = record_measurement(db, row(mc_agreed=45))
    record_measurement(db, row(expert=None, quant=None, candidate_type="Q2_K",
                               candidate_sha256="b" * 64, mc_agreed=20))
    assert second > first and len(list_measurements(db)) == 3
    latest = list_measurements(db, latest=True)
    assert [r["mc_agreed"] for r in latest] == [20, 45]
    got = agreements(db)
    assert got[0] == Agreement(None, "Q2_K", "F16", 50, 20)
    assert got[1] == Agreement("llama-3.1-8b", "Q4_K_M", "F16", 50, 45)
    with pytest.raises(Exception, match="unknown measurement field"):
        record_measurement(db, row(colour="blue"))


def test_fit_candidates_use_the_stored_measurements():
    db = open_db()
    record_measurement(db, row())
    catalog, shipped = load_catalog(), load_matrix(with_questions=False)
    budget = FitBudget(ram_bytes=16 * GB, include_base=True)  # llama-3.1-8b is a base model
    cs = build_candidates(catalog, shipped, budget, degradation_model(db))
    by = {(c.expert, c.quant): c for c in cs.candidates}
    measured = by[("llama-3.1-8b", "Q4_K_M")]
    assert measured.basis_kind == "quant eval"
    assert measured.factor == pytest.approx(shrunk(50, 0.8, FACTORS["Q4_K_M"]))
    assert by[("llama-3.1-8b", "Q5_K_M")].basis_kind == "table"
    others = [c for (e, q), c in by.items() if q == "Q4_K_M" and e != "llama-3.1-8b"]
    assert others and all(c.basis_kind == "calibrated" and c.factor == measured.factor
                          for c in others)


def test_fit_shows_which_basis_each_member_used():
    from leeroo_local.cli import app

    db = open_db()
    for i, q in enumerate(["Q3_K_M", "Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0"]):
        record_measurement(db, row(expert=None, quant=None, candidate_type=q,
                                   candidate_sha256=str(i) * 64, mc_agreed=49))
    runner = CliRunner()
    result = runner.invoke(app, ["fit", "--vram", "24GB", "--json"])
    assert result.exit_code == 0, result.output
    members = json.loads(result.output)["experts"]
    assert members and all(m["quality_basis"] == "calibrated" for m in members)
    assert all("calibrated by 1 quant eval(s), 50 questions" in m["quality"] for m in members)
    table = runner.invoke(app, ["fit", "--vram", "24GB"], env={"COLUMNS": "160"})
    assert table.exit_code == 0 and "calibrated" in table.output
