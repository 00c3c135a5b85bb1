"""The universe constructor: pick complementary candidates under one budget. Pure numpy, no I/O.

The objective is the paper's: S(U) = mean over questions of max over u in U of quality[q, u], the
accuracy of an oracle router over U. It is monotone and submodular (tests check both), so greedy
selection has known guarantees. With a knapsack budget neither greedy is good alone: the plain one
(largest gain) can spend the budget on one expensive candidate, the cost-benefit one (largest gain
per unit of cost) can starve on cheap ones. The better of the two is at least (1 - 1/e)/2 of the
optimum (Krause and Golovin, "Submodular Function Maximization", 2014, after Leskovec et al.,
KDD 2007); we also compare with the best single candidate, which only helps.

Candidates come in groups (the quantizations of one expert) and a universe takes at most one per
group. The greedy runs on the knapsack alone; then each group keeps one member and the budget that
frees goes to improving moves (add a candidate, or replace a member by another of its group). When
the higher-cost members of a group are at least as good on every question (true of the
degradation model), keeping one per group loses nothing and the moves only add, so the bound
still holds for the group-constrained problem (whose optimum is then the knapsack optimum).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

_EPS = 1e-12


@dataclass(frozen=True)
class Choice:
    """A chosen universe: candidate indices in greedy order, each with its gain and running S."""

    members: tuple[int, ...]
    gains: tuple[float, ...]
    running: tuple[float, ...]
    score: float
    cost: float
    strategy: str
    alternatives: dict[str, float] = field(default_factory=dict)
    dropped: tuple[int, ...] = ()  # candidates dropped for earning too small a share (routed)


def coverage(quality: np.ndarray, members) -> float:
    """S(U): mean over rows of the best member's quality; 0 for the empty set."""
    members = list(members)
    if not members or quality.shape[0] == 0:
        return 0.0
    return float(quality[:, members].max(axis=1).mean(dtype=np.float64))


def _check(quality: np.ndarray, cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    quality = np.asarray(quality, dtype=np.float32)
    cost = np.asarray(cost, dtype=np.float64)
    if quality.ndim != 2:
        raise ValueError("quality must be a matrix [questions x candidates]")
    if cost.shape != (quality.shape[1],):
        raise ValueError(f"cost has {cost.shape} entries for {quality.shape[1]} candidates")
    if not np.isfinite(quality).all() or (quality < 0).any():
        raise ValueError("quality must be finite and non-negative (fill missing cells first)")
    if (cost < 0).any() or not np.isfinite(cost).all():
        raise ValueError("costs must be finite and non-negative")
    return quality, cost


def _prepare(quality: np.ndarray, cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Checked inputs, quality transposed to [candidates x questions] so a candidate is one row."""
    quality, cost = _check(quality, cost)
    return np.ascontiguousarray(quality.T), cost


def _gains(qt: np.ndarray, idx: np.ndarray, cur: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Marginal gains of candidates `idx` over the running best `cur`: one matrix operation.

    Only `rows` (questions not yet at their best possible value) can gain anything.
    """
    n = qt.shape[1]
    block = qt[idx] if rows.size == n else qt[np.ix_(idx, rows)]
    block -= cur[rows]
    np.maximum(block, 0.0, out=block)
    return block.sum(axis=1, dtype=np.float32).astype(np.float64) / n


def _key(gains: np.ndarray, cost: np.ndarray, ratio: bool) -> np.ndarray:
    if not ratio:
        return gains
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(cost > _EPS, gains / np.maximum(cost, _EPS), np.inf)


def greedy(
    quality: np.ndarray,
    cost: np.ndarray,
    budget: float = math.inf,
    *,
    ratio: bool,
    max_items: int | None = None,
    min_gain: float = 0.0,
    start: tuple[int, ...] = (),
) -> list[int]:
    """Greedy under a knapsack: add the largest gain (or gain per cost, `ratio`) that still fits.

    Stops at `max_items`, or when nothing that fits adds more than `min_gain` to S.
    """
    qt, cost = _prepare(quality, cost)
    return _greedy(qt, cost, budget, ratio, max_items, min_gain, start)


def _greedy(qt, cost, budget, ratio, max_items, min_gain, start) -> list[int]:
    """Lazy greedy (Minoux's accelerated greedy, evaluated in batches).

    Gains only shrink as the universe grows (submodularity), so a gain computed at an earlier
    step bounds the current one: each step re-evaluates, one matrix operation per batch, only the
    candidates whose bound could still beat the best fresh value. Same picks as the plain loop.
    """
    m, n = qt.shape
    chosen = list(start)
    used = float(cost[chosen].sum()) if chosen else 0.0
    cur = qt[chosen].max(axis=0) if chosen else np.zeros(n, dtype=np.float32)
    rowmax = qt.max(axis=0) if m else np.zeros(n, dtype=np.float32)
    rows = np.flatnonzero(cur < rowmax)
    threshold = max(min_gain, _EPS)
    alive = np.ones(m, dtype=bool)
    alive[chosen] = False
    alive &= cost <= budget - used + _EPS
    upper = np.zeros(m)
    idx = np.flatnonzero(alive)
    upper[idx] = _gains(qt, idx, cur, rows)
    fresh = alive.copy()
    while max_items is None or len(chosen) < max_items:
        alive &= (cost <= budget - used + _EPS) & (upper > threshold)
        idx = np.flatnonzero(alive)
        if not idx.size or not rows.size:
            break
        stale_key = _key(upper[idx], cost[idx], ratio)
        order = np.argsort(-stale_key, kind="stable")
        idx, stale_key = idx[order], stale_key[order]
        pos, batch, pick = 0, 16, None
        while pos < idx.size:
            head = idx[pos : pos + batch]
            stale = head[~fresh[head]]
            if stale.size:
                upper[stale] = _gains(qt, stale, cur, rows)
                fresh[stale] = True
            pos += head.size
            seen = idx[:pos]
            key = np.where(upper[seen] > threshold, _key(upper[seen], cost[seen], ratio), -np.inf)
            best = int(np.argmax(key))
            bound = stale_key[pos] if pos < idx.size else -np.inf
            if key[best] > -np.inf and key[best] >= bound:
                pick = int(seen[best])
                break
            batch *= 2
        if pick is None:
            break
        chosen.append(pick)
        used += float(cost[pick])
        alive[pick] = False
        cur = np.maximum(cur, qt[pick])
        rows = rows[cur[rows] < rowmax[rows]]
        fresh[:] = False
    return chosen


def removal_losses(quality: np.ndarray, members) -> np.ndarray:
    """How much S drops when each member alone leaves the universe (top-two trick, one pass)."""
    return _removal_losses(np.ascontiguousarray(np.asarray(quality).T), members)


def _removal_losses(qt: np.ndarray, members) -> np.ndarray:
    values = qt[list(members)].astype(np.float64)
    if len(members) == 1:
        return values.mean(axis=1)
    top = values.argmax(axis=0)
    cols = np.arange(values.shape[1])
    first = values[top, cols]
    values[top, cols] = -np.inf
    second = values.max(axis=0)
    return np.bincount(top, weights=first - second, minlength=len(members)) / values.shape[1]


def resolve_groups(quality: np.ndarray, members: list[int], groups, cost=None) -> list[int]:
    """Keep one member per group: drop, one at a time, the member whose loss is smallest.

    Ties drop the costlier member, so the freed budget is largest.
    """
    return _resolve(np.ascontiguousarray(np.asarray(quality).T), members, np.asarray(groups), cost)


def _resolve(qt, members, groups, cost) -> list[int]:
    return drop_crowded(members, groups, cost, lambda m: _removal_losses(qt, m))


def drop_crowded(members, groups, cost, losses: Callable[[list[int]], Sequence[float]]) -> list[int]:
    """While a group has two members, drop the crowded member whose removal loses the least
    (`losses(members)[i]`: the objective lost without member i; ties: the costlier goes)."""
    members = list(members)
    while True:
        labels = [groups[j] for j in members]
        crowded = [i for i, g in enumerate(labels) if labels.count(g) > 1]
        if not crowded:
            return members
        lost = losses(members)
        drop = min(crowded, key=lambda i: (round(float(lost[i]), 12),
                                           -float(cost[members[i]]) if cost is not None else 0.0))
        members.pop(drop)


def improve(
    quality: np.ndarray,
    cost: np.ndarray,
    groups,
    members: list[int],
    budget: float = math.inf,
    *,
    ratio: bool,
    max_items: int | None = None,
    min_gain: float = 0.0,
) -> list[int]:
    """Spend what is left of the budget on moves that raise S: add a candidate of a new group, or
    replace a member by another candidate of its group (costing the difference).
    """
    qt, cost = _prepare(quality, cost)
    return _improve(qt, cost, np.asarray(groups), members, budget, ratio, max_items, min_gain)


def _improve(qt, cost, groups, members, budget, ratio, max_items, min_gain) -> list[int]:
    members = list(members)
    m, n = qt.shape
    all_rows = np.arange(n)
    threshold = max(min_gain, 1e-9)
    while True:
        cur = qt[members].max(axis=0) if members else np.zeros(n, dtype=np.float32)
        score = float(cur.mean(dtype=np.float64))
        left = budget - float(cost[members].sum())
        moves: list[tuple[float, float, int, int | None]] = []  # (gain, extra cost, new, old)
        if max_items is None or len(members) < max_items:
            adds = np.flatnonzero(~np.isin(groups, groups[members]) & (cost <= left + _EPS))
            if adds.size:
                gains = _gains(qt, adds, cur, all_rows)
                moves += [(float(g), float(cost[c]), int(c), None) for g, c in zip(gains, adds)]
        for old in members:
            rivals = np.flatnonzero((groups == groups[old]) & (cost - cost[old] <= left + _EPS))
            rivals = rivals[rivals != old]
            if not rivals.size:
                continue
            others = [k for k in members if k != old]
            base = qt[others].max(axis=0) if others else np.zeros(n, dtype=np.float32)
            new = np.maximum(qt[rivals], base).mean(axis=1, dtype=np.float64)
            moves += [(float(v) - score, float(cost[c] - cost[old]), int(c), old)
                      for v, c in zip(new, rivals)]
        if not take_best_move(moves, members, threshold, ratio):
            return members


def take_best_move(moves: list[tuple[float, float, int, int | None]], members: list[int],
                   threshold: float, ratio: bool) -> bool:
    """Apply the best move (gain, cost, new, replaced or None) whose gain passes `threshold`:
    by gain per unit of cost with `ratio`, else by gain (the cheaper on a tie). False when none."""
    moves = [mv for mv in moves if mv[0] > threshold]
    if not moves:
        return False
    if ratio:
        _, _, new_j, old = max(moves, key=lambda mv: mv[0] / mv[1] if mv[1] > _EPS else math.inf)
    else:
        _, _, new_j, old = max(moves, key=lambda mv: (mv[0], -mv[1]))
    if old is not None:
        members[members.index(old)] = new_j
    else:
        members.append(new_j)
    return True


def order_by_gain(quality: np.ndarray, members) -> tuple[list[int], list[float], list[float]]:
    """The members in plain-greedy order, with each one's marginal gain and the running S."""
    return _order(np.ascontiguousarray(np.asarray(quality, dtype=np.float32).T), members)


def _order(qt, members) -> tuple[list[int], list[float], list[float]]:
    """Members that add nothing once the others are in come last, with a gain of 0."""
    members = list(members)
    if not members:
        return [], [], []
    sub = qt[members]
    local = _greedy(sub, np.zeros(len(members)), math.inf, False, None, 0.0, ())
    local += [i for i in range(len(members)) if i not in local]
    order = [members[i] for i in local]
    running = [_score(sub, local[: i + 1]) for i in range(len(local))]
    gains = [r - p for r, p in zip(running, [0.0] + running[:-1])]
    return order, gains, running


def best_single(quality: np.ndarray, cost: np.ndarray, budget: float = math.inf) -> int | None:
    """The candidate with the highest mean quality among those that fit; None if none fits."""
    qt, cost = _prepare(quality, cost)
    return _best_single(qt, cost, budget)


def _best_single(qt, cost, budget) -> int | None:
    fits = np.flatnonzero(cost <= budget + _EPS)
    if not fits.size:
        return None
    means = qt[fits].sum(axis=1, dtype=np.float32).astype(np.float64) / max(qt.shape[1], 1)
    order = np.lexsort((cost[fits], -means))  # best mean, then cheapest
    return int(fits[order[0]])


def _score(qt: np.ndarray, members) -> float:
    members = list(members)
    return float(qt[members].max(axis=0).mean(dtype=np.float64)) if members and qt.shape[1] else 0.0


def fit(
    quality: np.ndarray,
    cost: np.ndarray,
    groups=None,
    budget: float = math.inf,
    *,
    max_items: int | None = None,
    min_gain: float = 0.0,
) -> Choice | None:
    """The best of cost-benefit greedy, plain greedy and the best single candidate.

    quality: [questions x candidates], non-negative; cost: per candidate (bytes of memory or disk);
    groups: a label per candidate, at most one per label is chosen (default: all distinct);
    budget: bound on the summed cost; max_items: bound on the universe's size.
    None when no candidate fits.
    """
    qt, cost = _prepare(quality, cost)
    groups = np.arange(qt.shape[0]) if groups is None else np.asarray(groups)
    if groups.shape != (qt.shape[0],):
        raise ValueError("groups needs one label per candidate")
    single = _best_single(qt, cost, budget)
    if single is None:
        return None
    results: dict[str, list[int]] = {"single": [single]}
    for name, ratio in (("cost-benefit", True), ("plain", False)):
        picked = _greedy(qt, cost, budget, ratio, max_items, min_gain, ())
        picked = _resolve(qt, picked, groups, cost)
        results[name] = _improve(qt, cost, groups, picked, budget, ratio, max_items, min_gain)
    scores = {name: _score(qt, sel) for name, sel in results.items()}
    # Best score; then a non-empty universe (the greedy adds nothing when nothing gains); then cheaper.
    strategy = max(results, key=lambda s: (scores[s], bool(results[s]), -float(cost[results[s]].sum())))
    order, gains, running = _order(qt, results[strategy])
    return Choice(
        members=tuple(order), gains=tuple(gains), running=tuple(running),
        score=scores[strategy], cost=float(cost[order].sum()), strategy=strategy,
        alternatives=scores,
    )


def swap_share(quality: np.ndarray, members, tol: float = 1e-9) -> tuple[float, list[float]]:
    """Expected share of requests that need a load when one expert is resident at a time.

    Requests are independent draws of the questions; each goes to an expert that is best for it,
    keeping the loaded one when it is among the best (else the earliest in `members`, which is
    greedy order). That is a Markov chain over the loaded expert; returns the stationary rate of
    switches and the share of requests each member serves.
    """
    members = list(members)
    k = len(members)
    if k <= 1:
        return 0.0, [1.0] * k
    values = np.asarray(quality[:, members], dtype=np.float64)
    best = values >= values.max(axis=1, keepdims=True) - tol
    pick = best.argmax(axis=1)
    trans = np.zeros((k, k))
    for a in range(k):
        miss = ~best[:, a]
        trans[a] = np.bincount(pick[miss], minlength=k) / len(values)
        trans[a, a] = best[:, a].mean()
    lazy = (trans + np.eye(k)) / 2  # same stationary law, never periodic
    pi = np.full(k, 1.0 / k)
    for _ in range(10_000):
        nxt = pi @ lazy
        if np.abs(nxt - pi).max() < 1e-13:
            break
        pi = nxt
    pi = pi / pi.sum()
    return float(pi @ (1.0 - np.diag(trans))), [float(p) for p in pi]
