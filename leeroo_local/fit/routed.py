"""The routed fit objective: what the router we ship gets from a universe. Pure numpy, no I/O.

S_routed(U) = mean over questions of quality[q, u*], u* the member of U whose predicted score
pred[q, u] is highest (ties to the earlier member). quality is the outcome times the
quantization's factor; pred is the cross-validated policy prediction times the same factor, as
routing.py scores a quantized member at run time. With pred = quality it is the oracle's S(U).

Unlike S(U) it is neither monotone nor submodular: a member the router over-trusts takes
questions from a better one (S can fall when it joins), and two experts can be worth more
together than the sum of their gains. So no lazy evaluation (every gain is recomputed at each
step, one matrix operation) and no approximation bound; tests and bench/fit_holdout.py compare
the greedy with exhaustive search on small pools.

The search mirrors fit.fit: cost-benefit and plain greedy under the knapsack, one member per
group, then improving moves (add, or change a member's quantization); then members the router
would send fewer than `min_share` of the questions are dropped one at a time (least share first,
their expert barred) and their memory goes back to the moves. The better strategy, or the best
single candidate, is kept.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from .greedy import Choice, drop_crowded, take_best_move

_EPS = 1e-12


def _check(quality, pred, cost) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    quality = np.asarray(quality, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    cost = np.asarray(cost, dtype=np.float64)
    if quality.ndim != 2 or pred.shape != quality.shape:
        raise ValueError("quality and pred must be matrices of one shape [questions x candidates]")
    if cost.shape != (quality.shape[1],):
        raise ValueError(f"cost has {cost.shape} entries for {quality.shape[1]} candidates")
    if not (np.isfinite(quality).all() and np.isfinite(pred).all()):
        raise ValueError("quality and pred must be finite (fill missing cells first)")
    return quality, pred, cost


def picks(pred: np.ndarray, members) -> np.ndarray:
    """Per question, the position in `members` of the member the router sends it to."""
    return np.argmax(np.asarray(pred)[:, list(members)], axis=1)


def routed_values(quality: np.ndarray, pred: np.ndarray, members) -> np.ndarray:
    """Per question, the quality of the member it is routed to."""
    members = list(members)
    chosen = np.asarray(members)[picks(pred, members)]
    return np.asarray(quality)[np.arange(len(chosen)), chosen]


def routed_score(quality: np.ndarray, pred: np.ndarray, members) -> float:
    """S_routed(U); 0 for the empty set."""
    members = list(members)
    if not members or np.asarray(quality).shape[0] == 0:
        return 0.0
    return float(routed_values(quality, pred, members).mean(dtype=np.float64))


def shares(pred: np.ndarray, members) -> list[float]:
    """Share of the questions the router sends to each member."""
    members = list(members)
    if not members:
        return []
    counts = np.bincount(picks(pred, members), minlength=len(members))
    return [float(c) for c in counts / max(np.asarray(pred).shape[0], 1)]


def _state(q, p, members) -> tuple[np.ndarray, np.ndarray]:
    """(best predicted score, routed quality) per question; -inf and 0 for no member."""
    if not members:
        return np.full(q.shape[0], -np.inf), np.zeros(q.shape[0])
    top = picks(p, members)
    chosen = np.asarray(members)[top]
    rows = np.arange(q.shape[0])
    return p[rows, chosen], q[rows, chosen]


def _gains(q, p, idx, cur_p, cur_q) -> np.ndarray:
    """S_routed(U + c) - S_routed(U) for every c in idx (c joins last, so it wins only strictly)."""
    wins = p[:, idx] > cur_p[:, None]
    return (wins * (q[:, idx] - cur_q[:, None])).mean(axis=0)


def _key(gains, cost, ratio: bool) -> np.ndarray:
    if not ratio:
        return gains
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(cost > _EPS, gains / np.maximum(cost, _EPS), np.inf)


def greedy(quality, pred, cost, budget: float = math.inf, *, ratio: bool,
           max_items: int | None = None, min_gain: float = 0.0, start=(), barred=()) -> list[int]:
    """Add the largest routed gain (or gain per cost) that fits, while one gains > min_gain."""
    q, p, cost = _check(quality, pred, cost)
    return _greedy(q, p, cost, budget, ratio, max_items, min_gain, start, barred)


def _greedy(q, p, cost, budget, ratio, max_items, min_gain, start, barred) -> list[int]:
    chosen = list(start)
    alive = np.ones(q.shape[1], dtype=bool)
    alive[chosen + list(barred)] = False
    threshold = max(min_gain, _EPS)
    while max_items is None or len(chosen) < max_items:
        alive &= cost <= budget - float(cost[chosen].sum()) + _EPS
        idx = np.flatnonzero(alive)
        if not idx.size:
            break
        cur_p, cur_q = _state(q, p, chosen)
        gains = _gains(q, p, idx, cur_p, cur_q)
        key = np.where(gains > threshold, _key(gains, cost[idx], ratio), -np.inf)
        best = int(np.argmax(key))
        if key[best] == -np.inf:
            break
        chosen.append(int(idx[best]))
        alive[idx[best]] = False
    return chosen


def resolve_groups(quality, pred, members, groups, cost) -> list[int]:
    """Keep one member per group: drop, one at a time, the crowded member whose removal costs
    the least routed accuracy (ties: the costlier)."""
    q, p, cost = _check(quality, pred, cost)
    return _resolve(q, p, members, np.asarray(groups), cost)


def _resolve(q, p, members, groups, cost) -> list[int]:
    def losses(m: list[int]) -> list[float]:
        base = routed_score(q, p, m)
        return [base - routed_score(q, p, m[:i] + m[i + 1:]) for i in range(len(m))]

    return drop_crowded(members, groups, cost, losses)


def improve(quality, pred, cost, groups, members, budget: float = math.inf, *, ratio: bool,
            max_items: int | None = None, min_gain: float = 0.0, barred=()) -> list[int]:
    """Spend what is left of the budget on moves that raise S_routed: add a candidate of a new
    group, or replace a member by another candidate of its group (costing the difference)."""
    q, p, cost = _check(quality, pred, cost)
    return _improve(q, p, cost, np.asarray(groups), members, budget, ratio, max_items, min_gain,
                    barred)


def _improve(q, p, cost, groups, members, budget, ratio, max_items, min_gain, barred) -> list[int]:
    members = list(members)
    barred_groups = np.isin(groups, groups[list(barred)]) if len(barred) else np.zeros_like(groups, bool)
    threshold = max(min_gain, 1e-9)
    while True:
        score = routed_score(q, p, members)
        left = budget - float(cost[members].sum())
        moves: list[tuple[float, float, int, int | None]] = []  # (gain, extra cost, new, old)
        if max_items is None or len(members) < max_items:
            adds = np.flatnonzero(~np.isin(groups, groups[members]) & ~barred_groups
                                  & (cost <= left + _EPS))
            if adds.size:
                cur_p, cur_q = _state(q, p, members)
                gains = _gains(q, p, adds, cur_p, cur_q)
                moves += [(float(g), float(cost[c]), int(c), None) for g, c in zip(gains, adds)]
        for pos, old in enumerate(members):
            rivals = np.flatnonzero((groups == groups[old]) & (cost - cost[old] <= left + _EPS))
            for c in rivals[rivals != old]:
                swapped = members[:pos] + [int(c)] + members[pos + 1:]
                moves.append((routed_score(q, p, swapped) - score, float(cost[c] - cost[old]),
                              int(c), old))
        if not take_best_move(moves, members, threshold, ratio):
            return members


def _earn(q, p, cost, groups, members, budget, ratio, max_items, min_gain, min_share
          ) -> tuple[list[int], list[int]]:
    """Drop members below min_share (least share first; their group barred), re-spending the
    memory each time. Returns the members and the dropped candidates."""
    dropped: list[int] = []
    while len(members) > 1:
        share = shares(p, members)
        low = int(np.argmin(share))
        if share[low] >= min_share:
            break
        dropped.append(members.pop(low))
        members = _improve(q, p, cost, groups, members, budget, ratio, max_items, min_gain, dropped)
    return members, dropped


def order_by_gain(quality, pred, members) -> tuple[list[int], list[float], list[float]]:
    """The members in plain-greedy order with each one's routed gain and the running S_routed
    (members that add nothing once the others are in come last)."""
    q, p, _ = _check(quality, pred, np.zeros(np.asarray(quality).shape[1]))
    members = list(members)
    local = _greedy(q[:, members], p[:, members], np.zeros(len(members)), math.inf, False, None,
                    0.0, (), ())
    local += [i for i in range(len(members)) if i not in local]
    order = [members[i] for i in local]
    running = [routed_score(q, p, order[: i + 1]) for i in range(len(order))]
    gains = [r - prev for r, prev in zip(running, [0.0] + running[:-1])]
    return order, gains, running


def fit(quality, pred, cost, groups=None, budget: float = math.inf, *,
        max_items: int | None = None, min_gain: float = 0.0, min_share: float = 0.0
        ) -> Choice | None:
    """The best of cost-benefit greedy, plain greedy and the best single candidate under the
    routed objective (fit.fit's contract). None when no candidate fits."""
    q, p, cost = _check(quality, pred, cost)
    groups = np.arange(q.shape[1]) if groups is None else np.asarray(groups)
    if groups.shape != (q.shape[1],):
        raise ValueError("groups needs one label per candidate")
    fits = np.flatnonzero(cost <= budget + _EPS)
    if not fits.size:
        return None
    means = q[:, fits].mean(axis=0)
    results: dict[str, list[int]] = {}
    dropped: dict[str, list[int]] = {}
    for name, ratio in (("cost-benefit", True), ("plain", False)):
        picked = _greedy(q, p, cost, budget, ratio, max_items, min_gain, (), ())
        picked = _resolve(q, p, picked, groups, cost)
        picked = _improve(q, p, cost, groups, picked, budget, ratio, max_items, min_gain, ())
        dropped[name] = []
        if min_share > 0:
            picked, dropped[name] = _earn(q, p, cost, groups, picked, budget, ratio, max_items,
                                          min_gain, min_share)
        results[name] = picked
    results["single"], dropped["single"] = [int(fits[np.lexsort((cost[fits], -means))[0]])], []
    scores = {name: routed_score(q, p, sel) for name, sel in results.items()}
    strategy = max(results, key=lambda s: (round(scores[s], 12), bool(results[s]),
                                           -float(cost[results[s]].sum())))
    order, gains, running = order_by_gain(q, p, results[strategy])
    # The order decides ties between predictions, so the score is that of the order shown.
    return Choice(members=tuple(order), gains=tuple(gains), running=tuple(running),
                  score=running[-1], cost=float(cost[order].sum()), strategy=strategy,
                  alternatives=scores, dropped=tuple(dropped[strategy]))


def exhaustive(quality, pred, cost, groups=None, budget: float = math.inf,
               max_items: int | None = None) -> tuple[list[int], float]:
    """The best universe by S_routed over every feasible one (at most one per group): for
    checking the greedy on small pools; exponential in the number of groups."""
    q, p, cost = _check(quality, pred, cost)
    groups = np.arange(q.shape[1]) if groups is None else np.asarray(groups)
    options = [[None, *np.flatnonzero(groups == g).tolist()] for g in np.unique(groups)]
    best: tuple[list[int], float] = ([], 0.0)
    for combo in itertools.product(*options):
        members = [c for c in combo if c is not None]
        if not members or (max_items is not None and len(members) > max_items):
            continue
        if float(cost[members].sum()) > budget + _EPS:
            continue
        score = routed_score(q, p, members)
        if score > best[1] + 1e-12:
            best = (members, score)
    return best
