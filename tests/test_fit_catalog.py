"""The fit layer over catalog, outcome data and memory model, on the shipped data and small folders."""

from __future__ import annotations

import numpy as np
import pytest
from outcome_folder import CATALOG_COLUMNS, random_scores, topic_matrix, write_folder
from pydantic import ValidationError

from leeroo_local.catalog import load_catalog
from leeroo_local.degradation import default_model
from leeroo_local.errors import BudgetTooSmall, DataError
from leeroo_local.fit import predictions as fit_predictions
from leeroo_local.fit.greedy import coverage
from leeroo_local.fit.plan import (FitBudget, build_candidates, plan, prediction_columns,
                                      routed_predictions)
from leeroo_local.fit.routed import routed_score
from leeroo_local.store.outcomes import load_matrix
from leeroo_local.universe import load_universe, save_universe

GB = 10**9


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


@pytest.fixture(scope="module")
def shipped():
    return load_matrix()  # with the question texts the router reads


def _in(expert, matrix) -> bool:
    return any(c.split("@")[0] in expert.columns() for c in matrix.experts)


def test_candidates_cover_every_quant_of_experts_with_data(catalog, shipped):
    cs = build_candidates(catalog, shipped, FitBudget(ram_bytes=16 * GB, include_base=True))
    with_data = [e for e in catalog.experts if not e.remote and _in(e, shipped)]
    assert len(cs.candidates) == sum(len(e.quants) for e in with_data)
    assert {s.id for s in cs.skipped} == {e.id for e in catalog.experts} - {e.id for e in with_data}
    model = default_model()
    column = shipped.experts.index("Meta-Llama-3_1-8B-Instruct")
    for j, c in enumerate(cs.candidates):
        if c.data_column == "Meta-Llama-3_1-8B-Instruct":
            expected = shipped.scores[:, column] * np.float32(model.factor(c.quant))
            np.testing.assert_allclose(cs.quality[:, j], expected, rtol=1e-6)
            assert c.basis.startswith(f"x{model.factor(c.quant):.3f}")


def test_vram_charges_the_gpu_compute_buffer(catalog, shipped):
    cpu = build_candidates(catalog, shipped, FitBudget(ram_bytes=16 * GB))
    gpu = build_candidates(catalog, shipped, FitBudget(vram_bytes=16 * GB))
    for a, b in zip(cpu.candidates, gpu.candidates):
        assert b.memory_bytes > a.memory_bytes
        assert b.gpu_bytes > 0 and a.gpu_bytes == 0


def test_measured_quant_outcomes_win_over_the_table(tmp_path, catalog):
    scores = random_scores(40, 2, seed=2)
    folder = write_folder(tmp_path / "d", scores, ["Meta-Llama-3_1-8B", "Meta-Llama-3_1-8B@Q4_K_M"])
    cs = build_candidates(catalog, load_matrix(folder), FitBudget(ram_bytes=16 * GB))
    by_quant = {c.quant: (j, c) for j, c in enumerate(cs.candidates) if c.expert == "llama-3.1-8b"}
    j, c = by_quant["Q4_K_M"]
    assert c.basis == "measured" and c.factor == 1.0
    np.testing.assert_array_equal(cs.quality[:, j], scores[:, 1])
    j, c = by_quant["Q5_K_M"]
    assert c.column == "Meta-Llama-3_1-8B" and c.factor < 1.0


def test_missing_cells_take_the_column_mean(tmp_path, catalog):
    scores = random_scores(40, 2, seed=3, missing=0.3)
    scores[0, :] = np.nan  # a question nobody answered is dropped
    folder = write_folder(tmp_path / "d", scores, list(CATALOG_COLUMNS[:2]))
    cs = build_candidates(catalog, load_matrix(folder), FitBudget(ram_bytes=16 * GB))
    answered = ~np.isnan(scores).all(axis=1)
    assert cs.quality.shape[0] == answered.sum() and "q0" not in cs.question_ids
    assert np.isfinite(cs.quality).all()
    kept = scores[answered]
    j, c = next((j, c) for j, c in enumerate(cs.candidates) if c.data_column == CATALOG_COLUMNS[0])
    hole = int(np.flatnonzero(np.isnan(kept[:, 0]))[0])
    assert cs.quality[hole, j] == pytest.approx(np.nanmean(kept[:, 0]) * c.factor, rel=1e-5)


@pytest.mark.parametrize("kw", [dict(vram_bytes=24 * GB), dict(vram_bytes=8 * GB, ram_bytes=16 * GB),
                                dict(ram_bytes=10 * GB), dict(vram_bytes=12 * GB, max_experts=2)])
def test_resident_plan_fits_and_is_consistent(catalog, shipped, kw):
    budget = FitBudget(**kw)
    report = plan(catalog, shipped, budget)
    assert report.objective == "routed" and report.predictions.source == "shipped"
    assert report.total_memory_bytes == sum(m.memory_bytes for m in report.experts)
    assert report.total_memory_bytes <= budget.capacity
    ids = [m.id for m in report.experts]
    assert len(ids) == len(set(ids))
    if budget.max_experts:
        assert len(ids) <= budget.max_experts
    assert report.experts[-1].score == pytest.approx(report.score)
    assert sum(m.gain for m in report.experts) == pytest.approx(report.score)
    assert sum(m.share for m in report.experts) == pytest.approx(1.0)
    assert sum(m.oracle_share for m in report.experts) == pytest.approx(1.0)
    assert len(ids) == 1 or min(m.share for m in report.experts) >= budget.min_share
    cs = build_candidates(catalog, shipped, budget)
    index = {(c.expert, c.quant): j for j, c in enumerate(cs.candidates)}
    chosen = [index[(m.id, m.quant)] for m in report.experts]
    pred = routed_predictions(cs, fit_predictions.predictions(
        shipped, prediction_columns(catalog, shipped)))
    assert routed_score(cs.quality, pred, chosen) == pytest.approx(report.score)
    assert report.routed_score == pytest.approx(report.score)
    assert coverage(cs.quality, chosen) == pytest.approx(report.oracle_score)
    assert report.best_single.score <= report.routed_score <= report.oracle_score
    assert report.recommend == ("universe" if report.routed_score - report.best_single.score
                                > report.noise else "single")
    universe = report.universe()
    universe.check(catalog)
    assert load_universe(save_universe(universe)) == universe


def test_swap_plan_bounds_each_expert_and_the_disk(catalog, shipped):
    budget = FitBudget(ram_bytes=12 * GB, mode="swap", disk_bytes=20 * GB, max_experts=3)
    report = plan(catalog, shipped, budget)
    assert all(m.memory_bytes <= budget.capacity for m in report.experts)
    assert report.total_disk_bytes <= 20 * GB
    assert 1 <= len(report.experts) <= 3
    assert 0.0 <= report.swap_share < 1.0
    assert "swap" in report.rule
    resident = plan(catalog, shipped, FitBudget(ram_bytes=12 * GB))
    assert resident.swap_share is None


def test_too_small_a_budget_names_the_smallest_expert(catalog, shipped):
    with pytest.raises(BudgetTooSmall) as info:
        plan(catalog, shipped, FitBudget(ram_bytes=2 * GB))
    cs = build_candidates(catalog, shipped, FitBudget(ram_bytes=2 * GB))
    smallest = min(cs.candidates, key=lambda c: c.memory_bytes)
    assert smallest.expert in str(info.value) and smallest.quant in str(info.value)
    assert info.value.exit_code == 3


def test_a_budget_needs_memory_and_the_data_needs_catalog_columns(tmp_path, catalog):
    with pytest.raises(ValidationError):
        FitBudget(disk_bytes=GB)
    folder = write_folder(tmp_path / "d", random_scores(5, 1), ["Nobody-7B"])
    with pytest.raises(DataError, match="data_column"):
        plan(catalog, load_matrix(folder), FitBudget(ram_bytes=16 * GB))


def test_experts_trained_for_less_context_are_skipped(catalog, shipped):
    cs = build_candidates(catalog, shipped, FitBudget(ram_bytes=64 * GB, n_ctx=8192))
    short = {e.id for e in catalog.experts if e.data_column and e.arch and e.arch.n_ctx_train < 8192}
    assert short and short <= {s.id for s in cs.skipped}
    assert not short & {c.expert for c in cs.candidates}


def test_the_oracle_objective_is_the_papers_s_of_u(catalog, shipped):
    budget = FitBudget(vram_bytes=24 * GB, objective="oracle")
    report = plan(catalog, shipped, budget)
    cs = build_candidates(catalog, shipped, budget)
    index = {(c.expert, c.quant): j for j, c in enumerate(cs.candidates)}
    chosen = [index[(m.id, m.quant)] for m in report.experts]
    assert report.score == pytest.approx(report.oracle_score)
    assert coverage(cs.quality, chosen) == pytest.approx(report.score)
    assert sum(m.gain for m in report.experts) == pytest.approx(report.score)
    routed = plan(catalog, shipped, FitBudget(vram_bytes=24 * GB))
    assert routed.routed_score >= report.routed_score  # what each objective maximises
    assert routed.oracle_score <= report.oracle_score


def _topic_folder(tmp_path, n=240):
    """Questions that say their topic; the catalog's mathstral is good at math, Llama 3.1
    Instruct at law, Phi-3 middling everywhere."""
    scores, _, texts, _ = topic_matrix(n, seed=3, fractional=False)
    columns = ["mathstral-7B", "Meta-Llama-3_1-8B-Instruct", "Phi-3-mini-4k-instruct"]
    return write_folder(tmp_path / "topics", scores, columns, texts=texts), columns


def test_the_router_is_cross_validated_once_then_cached(tmp_path, catalog):
    folder, columns = _topic_folder(tmp_path)
    matrix = load_matrix(folder)
    budget = FitBudget(ram_bytes=64 * GB)
    first = plan(catalog, matrix, budget)
    assert first.predictions.source == "computed" and first.predictions.folds == 5
    again = plan(catalog, matrix, budget)
    assert again.predictions.source == "cache"
    assert again.model_dump(exclude={"predictions"}) == first.model_dump(exclude={"predictions"})
    # the topic experts complement each other and the router can tell the topics apart
    assert {m.data_column for m in first.experts} >= {"mathstral-7B", "Meta-Llama-3_1-8B-Instruct"}
    assert first.routed_score > first.best_single.score + first.noise
    assert first.recommend == "universe"
    pred = fit_predictions.predictions(matrix, prediction_columns(catalog, matrix))
    assert pred.scores.shape == (240, 3) and set(pred.fold.tolist()) == set(range(5))


def test_without_question_texts_the_router_routes_like_one_expert(tmp_path, catalog):
    folder, columns = _topic_folder(tmp_path)
    report = plan(catalog, load_matrix(folder, with_questions=False), FitBudget(ram_bytes=64 * GB))
    assert report.recommend == "single" and len(report.experts) == 1
    assert report.routed_score == pytest.approx(report.best_single.score)
    assert any("no question texts" in n for n in report.notes)


def test_a_damaged_cache_file_is_recomputed(tmp_path, catalog):
    folder, columns = _topic_folder(tmp_path, n=60)
    matrix = load_matrix(folder)
    first = fit_predictions.predictions(matrix, columns)
    path = fit_predictions.cache_dir() / f"{first.key}.npz"
    path.write_bytes(b"not a zip")
    assert fit_predictions.load(path, first.key) is None
    again = fit_predictions.predictions(matrix, columns)
    assert again.source == "computed" and np.array_equal(again.scores, first.scores)


def test_fit_trains_policy_trains_recipe_with_each_questions_kind_and_the_costs(tmp_path):
    """fit judges a universe by the policy that will route it: each fold's trainer gets the
    training questions' kinds (for the kind estimate) and the experts' costs (for the blend's
    cost sweep), as `policy train` does."""
    scores, columns, texts, _ = topic_matrix(60, seed=1)
    matrix = load_matrix(write_folder(tmp_path / "kinds", scores, columns, texts=texts,
                                      costs=[7.0, 13.0, 3.0]))
    tasks, fold, _ = fit_predictions.fold_tasks(matrix, columns)
    assert len(tasks) == fit_predictions.FOLDS
    for task in tasks:
        train = [i for i in range(60) if fold[i] >= 0 and i not in set(task.test_rows.tolist())]
        assert task.train_kinds == [["math", "law"][i % 2] for i in train]
        assert task.costs.tolist() == [7.0, 13.0, 3.0]
    assert fit_predictions.run_fold(tasks[0]).shape == (len(tasks[0].test_rows), 3)
