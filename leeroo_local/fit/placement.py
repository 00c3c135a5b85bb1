"""Placement across hosts: the routed objective over every placed expert, one knapsack per host.
Pure numpy, no I/O.

A placement is a set of (candidate, host) pairs, at most one per expert (group). Its value is
S_routed of the placed candidates (fit.routed: the router picks by predicted score, whichever
host holds the expert) minus a network cost: `penalty[h]` for each question routed to a member
on host h (0 for this machine). That is S_routed over "virtual candidates" whose quality is
quality[:, c] - penalty[h] and whose prediction is pred[:, c], so the routed helpers apply as
they are; each host's members must fit its capacity.

The search mirrors routed.fit: cost-benefit greedy (gain per share of the host's capacity) and
plain greedy, each followed by improving moves (add an expert, or move a member to another
quantization or another host), then members earning under `min_share` are dropped; the best of
the two and the best single placement is kept. No approximation bound (S_routed is not
submodular); tests compare it with exhaustive search on small pools.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from .greedy import Choice, take_best_move
from .routed import _gains, _state, order_by_gain, routed_score, shares

_EPS = 1e-12


@dataclass(frozen=True)
class Expanded:
    """Every (candidate, host) pair that fits its host alone: what the search chooses among."""

    candidate: np.ndarray  # index of the candidate in the caller's columns
    host: np.ndarray  # index of the host
    cost: np.ndarray  # bytes on that host
    quality: np.ndarray  # [questions x pairs], network penalty subtracted
    pred: np.ndarray  # [questions x pairs]
    groups: np.ndarray


def expand(quality, pred, cost, groups, capacity, penalty) -> Expanded:
    """The pairs: `cost` is [candidates x hosts] (a host may count memory differently, e.g. a
    GPU's compute buffer), `capacity` and `penalty` one per host."""
    quality = np.asarray(quality, np.float64)
    pred = np.asarray(pred, np.float64)
    cost = np.asarray(cost, np.float64)
    capacity = np.asarray(capacity, np.float64)
    penalty = np.asarray(penalty, np.float64)
    if cost.shape != (quality.shape[1], len(capacity)) or penalty.shape != capacity.shape:
        raise ValueError("cost must be [candidates x hosts], capacity and penalty one per host")
    cand, host = np.nonzero(cost <= capacity[None, :] + _EPS)
    return Expanded(cand, host, cost[cand, host], quality[:, cand] - penalty[host][None, :],
                    pred[:, cand], np.asarray(groups)[cand])


def _left(x: Expanded, capacity: np.ndarray, members: list[int]) -> np.ndarray:
    used = np.bincount(x.host[members], weights=x.cost[members], minlength=len(capacity)) \
        if members else np.zeros(len(capacity))
    return capacity - used


def _greedy(x: Expanded, capacity, ratio: bool, max_items, min_gain, barred) -> list[int]:
    """Add the largest routed gain (or gain per share of its host) that fits its host, one
    pair per expert."""
    chosen: list[int] = []
    threshold = max(min_gain, _EPS)
    taken = set(x.groups[list(barred)].tolist()) if len(barred) else set()
    while max_items is None or len(chosen) < max_items:
        left = _left(x, capacity, chosen)
        ok = (x.cost <= left[x.host] + _EPS) & ~np.isin(x.groups, list(taken))
        idx = np.flatnonzero(ok)
        if not idx.size:
            break
        cur_p, cur_q = _state(x.quality, x.pred, chosen)
        gains = _gains(x.quality, x.pred, idx, cur_p, cur_q)
        share = x.cost[idx] / np.maximum(capacity[x.host[idx]], _EPS)
        with np.errstate(divide="ignore", invalid="ignore"):
            key = np.where(share > _EPS, gains / np.maximum(share, _EPS), np.inf) if ratio else gains
        key = np.where(gains > threshold, key, -np.inf)
        best = int(np.argmax(key))
        if key[best] == -np.inf:
            break
        chosen.append(int(idx[best]))
        taken.add(int(x.groups[idx[best]]))
    return chosen


def _improve(x: Expanded, capacity, ratio: bool, members, max_items, min_gain, barred) -> list[int]:
    """Moves that raise the objective: add a pair of a new expert, or replace a member by another
    pair of its expert (another quantization, another host), each within its host's capacity."""
    members = list(members)
    barred_groups = set(x.groups[list(barred)].tolist()) if len(barred) else set()
    threshold = max(min_gain, 1e-9)
    while True:
        score = routed_score(x.quality, x.pred, members)
        left = _left(x, capacity, members)
        moves: list[tuple[float, float, int, int | None]] = []
        if max_items is None or len(members) < max_items:
            used = set(x.groups[members].tolist()) | barred_groups
            adds = np.flatnonzero(~np.isin(x.groups, list(used)) & (x.cost <= left[x.host] + _EPS))
            if adds.size:
                cur_p, cur_q = _state(x.quality, x.pred, members)
                gains = _gains(x.quality, x.pred, adds, cur_p, cur_q)
                moves += [(float(g), float(x.cost[c] / capacity[x.host[c]]), int(c), None)
                          for g, c in zip(gains, adds)]
        for pos, old in enumerate(members):
            for c in np.flatnonzero(x.groups == x.groups[old]):
                if c == old:
                    continue
                room = left[x.host[c]] + (x.cost[old] if x.host[c] == x.host[old] else 0.0)
                if x.cost[c] > room + _EPS:
                    continue
                swapped = members[:pos] + [int(c)] + members[pos + 1:]
                extra = x.cost[c] / capacity[x.host[c]] - x.cost[old] / capacity[x.host[old]]
                moves.append((routed_score(x.quality, x.pred, swapped) - score, float(extra),
                              int(c), old))
        if not take_best_move(moves, members, threshold, ratio):
            return members


def place(x: Expanded, capacity, *, max_items: int | None = None, min_gain: float = 0.0,
          min_share: float = 0.0) -> Choice | None:
    """The best of cost-benefit greedy, plain greedy and the best single pair (routed.fit's
    contract, over hosts). None when no pair fits."""
    capacity = np.asarray(capacity, np.float64)
    if not x.candidate.size:
        return None
    results: dict[str, list[int]] = {}
    dropped: dict[str, list[int]] = {}
    for name, ratio in (("cost-benefit", True), ("plain", False)):
        picked = _greedy(x, capacity, ratio, max_items, min_gain, ())
        picked = _improve(x, capacity, ratio, picked, max_items, min_gain, ())
        gone: list[int] = []
        while min_share > 0 and len(picked) > 1:
            share = shares(x.pred, picked)
            low = int(np.argmin(share))
            if share[low] >= min_share:
                break
            gone.append(picked.pop(low))
            picked = _improve(x, capacity, ratio, picked, max_items, min_gain, gone)
        results[name], dropped[name] = picked, gone
    means = x.quality.mean(axis=0)
    results["single"] = [int(np.lexsort((x.host, x.cost, -means))[0])]
    dropped["single"] = []
    scores = {name: routed_score(x.quality, x.pred, sel) for name, sel in results.items()}
    strategy = max(results, key=lambda s: (round(scores[s], 12), bool(results[s]),
                                           -float(x.cost[results[s]].sum())))
    order, gains, running = order_by_gain(x.quality, x.pred, results[strategy])
    return Choice(members=tuple(order), gains=tuple(gains), running=tuple(running),
                  score=running[-1], cost=float(x.cost[order].sum()), strategy=strategy,
                  alternatives=scores, dropped=tuple(dropped[strategy]))


def exhaustive(x: Expanded, capacity, max_items: int | None = None) -> tuple[list[int], float]:
    """The best placement over every feasible one: for checking the search on small pools."""
    capacity = np.asarray(capacity, np.float64)
    options = [[None, *np.flatnonzero(x.groups == g).tolist()] for g in np.unique(x.groups)]
    best: tuple[list[int], float] = ([], -math.inf)
    for combo in itertools.product(*options):
        members = [c for c in combo if c is not None]
        if not members or (max_items is not None and len(members) > max_items):
            continue
        if (_left(x, capacity, members) < -_EPS).any():
            continue
        score = routed_score(x.quality, x.pred, members)
        if score > best[1] + 1e-12:
            best = (members, score)
    return best
