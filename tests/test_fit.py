"""The greedy universe constructor (leeroo_local.fit.greedy): objective, guarantees, budget, groups."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leeroo_local.fit import greedy as fit

BOUND = (1 - 1 / math.e) / 2


def reference_greedy(quality, cost, budget, ratio):
    """The textbook loop, one candidate at a time, in float64: what the lazy greedy must match."""
    q = quality.astype(np.float64)
    chosen, cur, used = [], np.zeros(q.shape[0]), 0.0
    while True:
        best = None
        for j in range(q.shape[1]):
            if j in chosen or used + cost[j] > budget:
                continue
            gain = np.maximum(q[:, j] - cur, 0).mean()
            if gain <= 1e-12:
                continue
            key = gain / cost[j] if ratio else gain
            if best is None or key > best[0]:
                best = (key, j)
        if best is None:
            return chosen
        chosen.append(best[1])
        used += cost[best[1]]
        cur = np.maximum(cur, q[:, best[1]])


def brute_force(quality, cost, groups, budget):
    """The optimum over every feasible subset (small pools only)."""
    best = 0.0
    m = quality.shape[1]
    for r in range(1, m + 1):
        for subset in itertools.combinations(range(m), r):
            if cost[list(subset)].sum() > budget + 1e-9:
                continue
            if len({groups[j] for j in subset}) < r:
                continue
            best = max(best, fit.coverage(quality, subset))
    return best


@st.composite
def pools(draw, max_candidates=7, binary=True):
    n = draw(st.integers(3, 25))
    m = draw(st.integers(1, max_candidates))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    if binary:
        quality = (rng.random((n, m)) < rng.uniform(0.1, 0.9, m)).astype(np.float32)
    else:
        quality = rng.random((n, m)).astype(np.float32)
    cost = rng.uniform(1.0, 10.0, m).round(2)
    groups = rng.integers(0, max(1, m - draw(st.integers(0, 2))), m)
    budget = float(draw(st.floats(0.5, 30.0)))
    return quality, cost, groups, budget


@settings(max_examples=60, deadline=None)
@given(pools(max_candidates=8))
def test_objective_is_monotone_with_diminishing_gains(pool):
    quality, _, _, _ = pool
    m = quality.shape[1]
    rng = np.random.default_rng(m)
    for _ in range(10):
        big = [j for j in range(m) if rng.random() < 0.6]
        small = [j for j in big if rng.random() < 0.5]
        x = int(rng.integers(m))
        s_small, s_big = fit.coverage(quality, small), fit.coverage(quality, big)
        assert s_small <= s_big + 1e-12
        gain_small = fit.coverage(quality, small + [x]) - s_small
        gain_big = fit.coverage(quality, big + [x]) - s_big
        assert gain_small >= gain_big - 1e-12


@st.composite
def quantized_pools(draw):
    """Experts at up to three quantizations: a costlier one scores a fixed factor higher."""
    n = draw(st.integers(3, 25))
    experts = draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    base = (rng.random((n, experts)) < rng.uniform(0.1, 0.9, experts)).astype(np.float32)
    size = rng.uniform(1.0, 8.0, experts)
    cols, cost, groups = [], [], []
    for e in range(experts):
        for factor, bits in list(zip((0.94, 0.98, 0.994), (3.9, 4.9, 8.5)))[: draw(st.integers(1, 3))]:
            cols.append(base[:, e] * factor)
            cost.append(round(size[e] * bits / 8, 2))
            groups.append(e)
    budget = float(draw(st.floats(0.5, 20.0)))
    return np.stack(cols, axis=1), np.array(cost), np.array(groups), budget


def check_choice(choice, quality, cost, groups, budget):
    if choice is None:
        assert cost.min() > budget
        return
    assert choice.cost <= budget + 1e-9
    assert cost[list(choice.members)].sum() <= budget + 1e-9
    assert len({groups[j] for j in choice.members}) == len(choice.members)
    assert choice.score == pytest.approx(fit.coverage(quality, choice.members))


@settings(max_examples=80, deadline=None)
@given(quantized_pools())
def test_fit_reaches_the_guarantee_with_quantized_experts(pool):
    # (1 - 1/e)/2 of the brute-force optimum under the same budget and one quant per expert.
    quality, cost, groups, budget = pool
    choice = fit.fit(quality, cost, groups, budget)
    check_choice(choice, quality, cost, groups, budget)
    if choice is not None:
        optimum = brute_force(quality, cost, groups, budget)
        assert BOUND * optimum - 1e-9 <= choice.score <= optimum + 1e-9


@settings(max_examples=80, deadline=None)
@given(pools(max_candidates=7))
def test_fit_respects_budget_and_groups_and_the_bound_without_groups(pool):
    quality, cost, groups, budget = pool
    check_choice(fit.fit(quality, cost, groups, budget), quality, cost, groups, budget)
    free = np.arange(quality.shape[1])
    choice = fit.fit(quality, cost, free, budget)
    check_choice(choice, quality, cost, free, budget)
    if choice is not None:
        optimum = brute_force(quality, cost, free, budget)
        assert BOUND * optimum - 1e-9 <= choice.score <= optimum + 1e-9


@settings(max_examples=40, deadline=None)
@given(pools(max_candidates=12, binary=False), st.booleans())
def test_lazy_greedy_picks_what_the_textbook_loop_picks(pool, ratio):
    quality, cost, _, budget = pool
    assert fit.greedy(quality, cost, budget, ratio=ratio) == reference_greedy(quality, cost, budget, ratio)


@settings(max_examples=40, deadline=None)
@given(pools(max_candidates=10), st.integers(1, 4))
def test_max_items_bounds_the_universe(pool, k):
    quality, cost, groups, budget = pool
    choice = fit.fit(quality, cost, groups, budget, max_items=k)
    if choice is not None:
        assert 1 <= len(choice.members) <= k
        assert choice.cost <= budget + 1e-9


def test_plain_greedy_wins_where_cost_benefit_starves():
    # One expensive candidate right on everything; a cheap one right on a tenth.
    quality = np.zeros((10, 2), dtype=np.float32)
    quality[:, 0] = 1
    quality[0, 1] = 1
    choice = fit.fit(quality, np.array([10.0, 0.5]), budget=10.0)
    assert choice.members == (0,)
    assert choice.score == 1.0
    assert choice.strategy in ("plain", "single")
    assert choice.alternatives["cost-benefit"] < 1.0


def test_cost_benefit_wins_where_plain_greedy_overspends():
    # A big candidate covers half; ten cheap ones cover disjoint tenths (the optimum: all ten).
    n = 100
    quality = np.zeros((n, 11), dtype=np.float32)
    quality[:55, 0] = 1
    for j in range(10):
        quality[j * 10 : (j + 1) * 10, j + 1] = 1
    cost = np.array([10.0] + [1.0] * 10)
    choice = fit.fit(quality, cost, budget=10.0)
    assert choice.strategy == "cost-benefit"
    assert sorted(choice.members) == list(range(1, 11))
    assert choice.score == pytest.approx(1.0)
    assert choice.alternatives["plain"] == pytest.approx(0.55)


def test_disjoint_candidates_under_unit_costs_give_the_optimum():
    sizes = [30, 5, 20, 10, 25]
    quality = np.zeros((sum(sizes), len(sizes)), dtype=np.float32)
    start = 0
    for j, size in enumerate(sizes):
        quality[start : start + size, j] = 1
        start += size
    choice = fit.fit(quality, np.ones(len(sizes)), budget=3)
    assert sorted(choice.members) == [0, 2, 4]
    assert choice.score == pytest.approx(75 / 90)
    assert choice.gains == pytest.approx((30 / 90, 25 / 90, 20 / 90))
    assert choice.running[-1] == pytest.approx(choice.score)


def test_one_quantization_per_expert_and_leftover_budget_upgrades_it():
    # Expert A at two quantizations (the better one costs more), expert B complementary.
    rng = np.random.default_rng(0)
    a = (rng.random(200) < 0.6).astype(np.float32)
    b = (1 - a) * (rng.random(200) < 0.5)
    quality = np.stack([0.94 * a, 0.99 * a, b], axis=1).astype(np.float32)
    cost = np.array([4.0, 8.0, 5.0])
    groups = np.array([0, 0, 1])
    choice = fit.fit(quality, cost, groups, budget=13.0)
    assert sorted(choice.members) == [1, 2]  # upgraded to the better quantization
    assert choice.score == pytest.approx(brute_force(quality, cost, groups, 13.0))
    tight = fit.fit(quality, cost, groups, budget=9.5)
    assert sorted(tight.members) == [0, 2]  # only the cheap one leaves room for B


def test_min_gain_stops_early():
    quality = np.eye(4, dtype=np.float32)
    quality[:, 0] = 1  # candidate 0 is right everywhere: the others add nothing
    choice = fit.fit(quality, np.ones(4), budget=4)
    assert choice.members == (0,)
    rng = np.random.default_rng(1)
    quality = (rng.random((400, 6)) < 0.5).astype(np.float32)
    free = fit.fit(quality, np.ones(6), budget=6)
    stingy = fit.fit(quality, np.ones(6), budget=6, min_gain=0.05)
    assert len(stingy.members) < len(free.members)
    assert all(g > 0.05 for g in stingy.gains)


def test_nothing_fits():
    assert fit.fit(np.ones((3, 2), dtype=np.float32), np.array([5.0, 6.0]), budget=4.0) is None


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="finite"):
        fit.fit(np.array([[np.nan, 1.0]]), np.ones(2))
    with pytest.raises(ValueError, match="cost"):
        fit.fit(np.ones((2, 2)), np.ones(3))
    with pytest.raises(ValueError, match="groups"):
        fit.fit(np.ones((2, 2)), np.ones(2), groups=[0, 1, 2])


def test_removal_losses_match_recomputation():
    rng = np.random.default_rng(3)
    quality = rng.random((50, 5)).astype(np.float32)
    members = [0, 2, 3, 4]
    losses = fit.removal_losses(quality, members)
    total = fit.coverage(quality, members)
    for loss, j in zip(losses, members):
        assert loss == pytest.approx(total - fit.coverage(quality, [k for k in members if k != j]))


def test_order_by_gain_sums_to_the_score():
    rng = np.random.default_rng(4)
    quality = (rng.random((100, 6)) < 0.4).astype(np.float32)
    order, gains, running = fit.order_by_gain(quality, [5, 1, 3])
    assert sorted(order) == [1, 3, 5]
    assert sum(gains) == pytest.approx(fit.coverage(quality, [1, 3, 5]))
    assert gains == sorted(gains, reverse=True)
    assert running[0] == pytest.approx(max(quality[:, j].mean() for j in (1, 3, 5)))


def test_swap_share_for_known_chains():
    half = np.array([[1, 0]] * 5 + [[0, 1]] * 5, dtype=np.float32)
    rate, shares = fit.swap_share(half, [0, 1])
    assert rate == pytest.approx(0.5)  # the next request's expert differs half of the time
    assert shares == pytest.approx([0.5, 0.5])
    same = np.ones((10, 2), dtype=np.float32)
    assert fit.swap_share(same, [0, 1])[0] == 0.0  # a tie keeps the loaded expert
    assert fit.swap_share(half, [1]) == (0.0, [1.0])
    skewed = np.array([[1, 0]] * 9 + [[0, 1]], dtype=np.float32)
    rate, shares = fit.swap_share(skewed, [0, 1])
    assert rate == pytest.approx(2 * 0.9 * 0.1)
    assert shares == pytest.approx([0.9, 0.1])
