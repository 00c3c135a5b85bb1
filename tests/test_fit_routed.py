"""The routed fit objective (leeroo_local.fit.routed): what the router gets, greedy vs exhaustive."""

from __future__ import annotations

import math

import numpy as np
import pytest

from leeroo_local.fit import greedy as fit
from leeroo_local.fit import routed as fit_routed


def pool(seed: int, n: int = 60, m: int = 6, noise: float = 0.3):
    """Outcomes, and predictions that know them only through noise (a router, not an oracle)."""
    rng = np.random.default_rng(seed)
    quality = (rng.random((n, m)) < rng.uniform(0.2, 0.7, m)).astype(np.float64)
    pred = 0.4 * quality + rng.uniform(0.2, 0.6, m) + rng.normal(0, noise, (n, m))
    cost = rng.uniform(1.0, 5.0, m).round(1)
    groups = rng.integers(0, max(1, m - 2), m)
    return quality, pred, cost, groups


def test_with_perfect_predictions_it_is_the_oracle_objective():
    for seed in range(20):
        quality, _, _, _ = pool(seed)
        members = list(np.random.default_rng(seed).choice(6, 3, replace=False))
        assert fit_routed.routed_score(quality, quality, members) == pytest.approx(
            fit.coverage(quality, members))


def test_the_router_decides_and_ties_go_to_the_earlier_member():
    quality = np.array([[1, 0], [0, 1], [1, 1]], dtype=float)
    pred = np.array([[0.2, 0.9], [0.9, 0.2], [0.5, 0.5]])
    assert fit_routed.routed_score(quality, pred, [0, 1]) == pytest.approx(1 / 3)
    assert fit.coverage(quality, [0, 1]) == 1.0
    assert fit_routed.shares(pred, [0, 1]) == pytest.approx([2 / 3, 1 / 3])
    assert fit_routed.shares(pred, [1, 0]) == pytest.approx([2 / 3, 1 / 3])


def test_an_over_trusted_expert_lowers_the_score_so_greedy_leaves_it_out():
    """Not monotone: B is right where A is not on 10% of questions but the router prefers it on
    half of them, where A was right. The oracle objective takes B; the routed one does not."""
    n = 100
    a = np.r_[np.ones(60), np.zeros(40)]
    b = np.r_[np.zeros(50), np.ones(10), np.ones(10), np.zeros(30)]
    quality = np.stack([a, b], axis=1)
    pred = np.stack([np.full(n, 0.6), np.r_[np.full(50, 0.7), np.full(50, 0.5)]], axis=1)
    assert fit_routed.routed_score(quality, pred, [0, 1]) < fit_routed.routed_score(quality, pred, [0])
    oracle = fit.fit(quality, np.ones(2), budget=2.0)
    routed = fit_routed.fit(quality, pred, np.ones(2), budget=2.0)
    assert sorted(oracle.members) == [0, 1]
    assert routed.members == (0,) and routed.score == pytest.approx(0.6)


def test_choice_is_feasible_and_its_numbers_agree():
    for seed in range(30):
        quality, pred, cost, groups = pool(seed)
        choice = fit_routed.fit(quality, pred, cost, groups, budget=8.0)
        members = list(choice.members)
        assert cost[members].sum() <= 8.0 + 1e-9
        assert len({groups[j] for j in members}) == len(members)
        assert choice.score == pytest.approx(fit_routed.routed_score(quality, pred, members))
        assert choice.running[-1] == pytest.approx(choice.score)
        assert sum(choice.gains) == pytest.approx(choice.score)
        assert choice.score >= max(quality[:, j].mean() for j in range(6) if cost[j] <= 8.0) - 1e-12


def test_greedy_against_exhaustive_search_on_small_pools():
    """No guarantee (the objective is not submodular): on these 200 random pools the greedy
    finds the optimum on 96.5% and reaches at least 95.9% of it on the others."""
    ratios = []
    for seed in range(200):
        quality, pred, cost, groups = pool(seed, m=7)
        budget = float(np.random.default_rng(seed).uniform(3.0, 12.0))
        choice = fit_routed.fit(quality, pred, cost, groups, budget)
        if choice is None:
            assert fit_routed.exhaustive(quality, pred, cost, groups, budget)[0] == []
            continue
        _, best = fit_routed.exhaustive(quality, pred, cost, groups, budget)
        assert choice.score <= best + 1e-9
        ratios.append(choice.score / best)
    ratios = np.array(ratios)
    assert (ratios > 1 - 1e-9).mean() >= 0.9
    assert ratios.min() >= 0.9


def test_a_member_that_earns_too_small_a_share_gives_its_memory_to_a_better_quantization():
    """Group 0 (candidates 0: cheap, 1: better and costlier) and expert 2, which the router sends
    4% of the questions. Without --min-share the budget goes to 0 + 2 (it adds 4 points where the
    better quantization adds 3); with 5% it goes to 1."""
    n = 100
    q0 = np.r_[np.ones(50), np.zeros(50)]
    q1 = np.r_[np.ones(53), np.zeros(47)]
    q2 = np.r_[np.zeros(60), np.ones(4), np.zeros(36)]
    quality = np.stack([q0, q1, q2], axis=1)
    pred = np.stack([np.full(n, 0.5), np.full(n, 0.5) + 0.001, q2], axis=1)
    cost, groups = np.array([2.0, 4.0, 2.0]), np.array([0, 0, 1])
    free = fit_routed.fit(quality, pred, cost, groups, 4.0, min_share=0.0)
    assert sorted(free.members) == [0, 2] and free.score == pytest.approx(0.54)
    assert fit_routed.shares(pred, free.members)[free.members.index(2)] == pytest.approx(0.04)
    earned = fit_routed.fit(quality, pred, cost, groups, 4.0, min_share=0.05)
    assert earned.members == (1,) and earned.score == pytest.approx(0.53)
    assert earned.dropped == (2,)


def test_inputs_are_checked():
    with pytest.raises(ValueError, match="one shape"):
        fit_routed.fit(np.zeros((3, 2)), np.zeros((3, 3)), np.ones(2))
    with pytest.raises(ValueError, match="finite"):
        fit_routed.fit(np.zeros((3, 2)), np.full((3, 2), np.nan), np.ones(2))
    assert fit_routed.fit(np.zeros((3, 2)), np.zeros((3, 2)), np.full(2, 5.0), budget=1.0) is None
    assert fit_routed.routed_score(np.zeros((3, 2)), np.zeros((3, 2)), []) == 0.0
    assert fit_routed.exhaustive(np.ones((2, 1)), np.ones((2, 1)), np.ones(1), budget=math.inf) == ([0], 1.0)


def test_the_shipped_predictions_match_the_current_recipe():
    """A change to the trainer's recipe or features changes the key, and `fit` on the shipped
    data would then spend an hour recomputing: rebuild the file with the change
    (`python bench/fit_holdout.py --write-shipped`, or raise RECIPE)."""
    from leeroo_local.fit import predictions as fp
    from leeroo_local.store.outcomes import default_data_dir, load_matrix

    shipped = fp.load(default_data_dir() / fp.SHIPPED_FILE)
    assert shipped is not None
    assert fp.data_key(load_matrix(), shipped.columns) == shipped.key


@pytest.mark.parametrize("name", ["mmlu-pro", "llmrouter"])
def test_each_shipped_source_carries_predictions_for_the_catalogs_columns(name):
    """`fit` finds every shipped source's predictions (no training on a fresh install) as long
    as the catalog's columns and the recipe are those they were computed for; after a change,
    `python bench/fit_holdout.py --write-shipped --data NAME` rebuilds the file."""
    from leeroo_local.catalog import load_catalog
    from leeroo_local.fit import predictions as fp
    from leeroo_local.fit.outcome_sources import shipped_folder
    from leeroo_local.fit.plan import prediction_columns
    from leeroo_local.store.outcomes import load_matrix

    folder = shipped_folder(name)
    matrix = load_matrix(folder)
    columns = prediction_columns(load_catalog(), matrix)
    found = fp.predictions(matrix, columns)
    assert found.source == "shipped" and found.columns == sorted(columns)
    assert found.scores.shape == (len(matrix.question_ids), len(columns))
