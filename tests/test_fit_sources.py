"""`fit` over several outcome sources: each source's questions score only the experts measured
on them, every source weighs the same, base models join only when asked, and the report says
what the universe does on each source."""

from __future__ import annotations

import numpy as np
import pytest
from outcome_folder import write_folder

from leeroo_local.catalog import load_catalog
from leeroo_local.errors import DataError
from leeroo_local.fit import combine as fit_combine
from leeroo_local.fit.outcome_sources import SHIPPED_SOURCES, fit_sources
from leeroo_local.fit.plan import (FitBudget, SourceData, build_candidates, plan_sources,
                                   routed_predictions)
from leeroo_local.fit.predictions import Predictions
from leeroo_local.store.outcomes import load_matrix

GB = 10**9


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def _source(tmp_path, name, scores, columns, noise=0.05, seed=0):
    """A folder source with predictions that see each outcome through a little noise (a router
    that is right about who answers what), so the test needs no policy training."""
    folder = write_folder(tmp_path / name, scores, columns)
    matrix = load_matrix(folder)
    rng = np.random.default_rng(seed)
    filled = np.nan_to_num(scores, nan=0.0) + rng.normal(0, noise, scores.shape)
    pred = Predictions(list(matrix.question_ids), list(matrix.experts),
                       filled.astype(np.float32), np.zeros(len(scores), int), f"key-{name}")
    return SourceData(name, str(folder), matrix, pred)


def _two_sources(tmp_path, n=200):
    """MMLU-Pro-like data where only Llama 3.1 8B Instruct and Phi-3 have outcomes, and
    mixed-task-like data where Llama (under its other column name), Qwen2.5 and Gemma 2 have:
    Qwen is right on the first half of the mixed prompts, Gemma on the second."""
    rng = np.random.default_rng(1)
    mmlu = np.stack([rng.random(n) < 0.6, rng.random(n) < 0.4], axis=1).astype(np.float32)
    half = np.arange(n) < n // 2
    mixed = np.stack([rng.random(n) < 0.5, half, ~half], axis=1).astype(np.float32)
    a = _source(tmp_path, "mmlu", mmlu, ["Meta-Llama-3_1-8B-Instruct", "Phi-3-mini-4k-instruct"])
    b = _source(tmp_path, "mixed", mixed,
                ["llama-3.1-8b-instruct", "qwen2.5-7b-instruct", "gemma-2-9b-it"], seed=1)
    return a, b


def test_an_expert_is_scored_only_where_it_has_outcomes_and_sources_weigh_the_same(tmp_path, catalog):
    a, b = _two_sources(tmp_path)
    budget = FitBudget(vram_bytes=24 * GB)
    parts = []
    for src in (a, b):
        cs = build_candidates(catalog, src.matrix, budget)
        parts.append(fit_combine.SourcePart(src.name, cs, routed_predictions(cs, src.predictions)))
    combined = fit_combine.combine(parts)
    experts = [c.expert for c in combined.cs.candidates]
    qwen = experts.index("qwen2.5-7b-instruct")
    phi = experts.index("phi-3-mini-4k-instruct")
    llama = experts.index("llama-3.1-8b-instruct")
    first, second = combined.rows
    # Qwen was never measured on the first source: no quality, never predicted best there
    assert (combined.raw[first, qwen] == 0).all() and (combined.pred[first, qwen] == fit_combine.MISSING).all()
    assert (combined.pred[second, phi] == fit_combine.MISSING).all()
    # Llama 3.1 8B Instruct is one expert with outcomes in both sources (two column names)
    assert combined.has[:, llama].all() and experts.count("llama-3.1-8b-instruct") == len(
        catalog.get("llama-3.1-8b-instruct").quants)
    # a source of 200 and one of 200: weights 1; make the second 4x larger and it weighs the same
    c = _source(tmp_path, "big", np.tile(b.matrix.scores, (4, 1)), list(b.matrix.experts))
    big = build_candidates(catalog, c.matrix, budget)
    both = fit_combine.combine([parts[0], fit_combine.SourcePart("big", big, big.quality)])
    w = both.weights
    assert w[both.rows[0]].sum() == pytest.approx(w[both.rows[1]].sum())


def test_fit_over_two_sources_takes_experts_of_both_and_reports_each(tmp_path, catalog):
    a, b = _two_sources(tmp_path)
    report = plan_sources(catalog, [a, b], FitBudget(vram_bytes=24 * GB))
    ids = {m.id for m in report.experts}
    assert {"qwen2.5-7b-instruct", "gemma-2-9b-it"} <= ids  # they split the mixed prompts
    assert [s.name for s in report.sources] == ["mmlu", "mixed"]
    mmlu, mixed = report.sources
    assert mixed.routed_score > 0.9  # the router sends each half to its expert
    assert mixed.best_single.id in {"qwen2.5-7b-instruct", "gemma-2-9b-it", "llama-3.1-8b-instruct"}
    assert mixed.routed_score > mixed.best_single.score + 0.3
    assert report.routed_score == pytest.approx((mmlu.routed_score + mixed.routed_score) / 2,
                                                abs=1e-6)
    assert all(m.split("@")[0] in {"llama-3.1-8b-instruct", "phi-3-mini-4k-instruct"}
               for m in mmlu.members)
    assert report.n_questions == 400 and " + " in report.data
    assert report.total_memory_bytes <= 24 * GB


def test_base_models_join_only_when_asked_unless_the_data_has_no_instruct_expert(tmp_path, catalog):
    rng = np.random.default_rng(2)
    scores = (rng.random((60, 2)) < 0.5).astype(np.float32)
    mixed = _source(tmp_path, "m", scores, ["codegemma-7b", "qwen2.5-7b-instruct"])
    cs = build_candidates(catalog, mixed.matrix, FitBudget(ram_bytes=32 * GB))
    assert {c.expert for c in cs.candidates} == {"qwen2.5-7b-instruct"}
    assert any(s.id == "codegemma-7b" and "--base" in s.reason for s in cs.skipped)
    asked = build_candidates(catalog, mixed.matrix, FitBudget(ram_bytes=32 * GB, include_base=True))
    assert {c.expert for c in asked.candidates} == {"qwen2.5-7b-instruct", "codegemma-7b"}
    base_only = _source(tmp_path, "b", scores, ["Yi-6B", "Llama-2-7b-hf"])
    cs = build_candidates(catalog, base_only.matrix, FitBudget(ram_bytes=32 * GB))
    assert {c.expert for c in cs.candidates} == {"yi-6b", "llama-2-7b"}
    assert any("base models only" in n for n in cs.notes)


def test_open_large_experts_are_candidates_only_when_they_fit(tmp_path, catalog):
    rng = np.random.default_rng(3)
    scores = (rng.random((80, 2)) < [0.4, 0.8]).astype(np.float32)
    src = _source(tmp_path, "l", scores, ["qwen2.5-7b-instruct", "llama-3.1-nemotron-51b-instruct"])
    small = plan_sources(catalog, [src], FitBudget(vram_bytes=24 * GB))
    assert all(catalog.get(m.id).kind == "open" for m in small.experts)
    assert any("llama-3.1-nemotron-51b-instruct" in n for n in small.notes)
    large = plan_sources(catalog, [src], FitBudget(vram_bytes=80 * GB))
    assert "llama-3.1-nemotron-51b-instruct" in {m.id for m in large.experts}


def test_fit_sources_default_both_shipped_one_by_name_or_a_folder(tmp_path):
    both = fit_sources()
    assert [s.name for s in both] == list(SHIPPED_SOURCES) == ["mmlu-pro", "llmrouter"]
    assert len(both[1].matrix.question_ids) == 4439 and both[1].matrix.questions
    one = fit_sources("llmrouter")
    assert [s.name for s in one] == ["llmrouter"]
    folder = write_folder(tmp_path / "mine", np.ones((3, 1), np.float32), ["Yi-6B"])
    assert fit_sources(folder)[0].label == str(folder)
    with pytest.raises(DataError, match="neither a folder nor a shipped source"):
        fit_sources(tmp_path / "nowhere")


def test_fit_on_the_shipped_sources_recommends_from_both_with_shipped_predictions(catalog):
    sources = [SourceData(s.name, s.label, s.matrix) for s in fit_sources()]
    report = plan_sources(catalog, sources, FitBudget(vram_bytes=24 * GB))
    assert report.predictions.source == "shipped"  # both sources ship their predictions
    assert [s.name for s in report.sources] == ["mmlu-pro", "llmrouter"]
    for s in report.sources:
        assert s.routed_score is not None and s.best_single is not None
        assert s.predictions.source == "shipped"
    mixed = report.sources[1]
    assert {m.split("@")[0] for m in mixed.members} & {"qwen2.5-7b-instruct", "gemma-2-9b-it"}
    assert all(catalog.get(m.id).instruct for m in report.experts)  # base models were not asked
    assert report.total_memory_bytes <= 24 * GB
