"""The router contract and the cost-aware decision every router shares.

A router predicts, for one prompt, a score in [0, 1] per expert (`scores`: the one method a
router implements). The decision is the same for all routers and lives here:

    pick argmax_j  score_j - L * cost_j - extra_j        over the affordable experts

`L` (cost weight) trades predicted quality for cost; `extra_j` carries costs only the caller
knows (the runtime adds the expected load of an expert that is not loaded). A hard budget
`max_mean_cost C` over a batch or a session is kept by the paper's rule: at each step, experts
that would leave the rest of the batch unaffordable (even at the cheapest expert) are excluded,
so the achieved mean cost never exceeds C. For a batch known in advance, `route_batch` first
finds the smallest L whose decisions fit C on the batch's own predictions, so the budget is
spread over the batch instead of being spent on its first prompts.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError

_SLACK = 1e-9  # float tolerance on budget comparisons


@dataclass(frozen=True)
class Decision:
    """One routed prompt: the chosen expert and what was weighed."""

    index: int
    expert: str
    scores: dict[str, float]
    utility: float
    excluded: tuple[str, ...] = ()


def decide(scores: np.ndarray, costs: np.ndarray, cost_weight: float = 0.0,
           extra: np.ndarray | None = None, allowed: np.ndarray | None = None) -> int:
    """Index of the expert with the best score - L * cost - extra among the allowed ones;
    ties go to the cheaper expert, then to the first."""
    utility = scores - cost_weight * costs
    if extra is not None:
        utility = utility - extra
    if allowed is not None:
        if not allowed.any():
            raise ConfigError("no expert is affordable under the cost budget")
        utility = np.where(allowed, utility, -np.inf)
    best = np.flatnonzero(utility >= utility.max() - 1e-12)
    return int(best[np.argmin(costs[best])])


class Budget:
    """A hard mean-cost budget over a batch of `total` prompts, or an open-ended session.

    With `total` known: an expert is affordable when, after it, the remaining prompts can still
    be served at the cheapest expert's cost (the paper's rule). Without `total` (a session), the
    running mean cost must stay within the budget after every prompt.
    """

    def __init__(self, max_mean_cost: float, costs: np.ndarray, total: int | None = None):
        costs = np.asarray(costs, dtype=np.float64)
        if max_mean_cost + _SLACK < costs.min():
            raise ConfigError(
                f"the mean-cost budget {max_mean_cost:g} is below the cheapest expert's cost "
                f"{costs.min():g}: no routing can keep it")
        if total is not None and total < 0:
            raise ValueError("total must be >= 0")
        self.max_mean_cost = float(max_mean_cost)
        self.costs = costs
        self.total = total
        self.spent = 0.0
        self.served = 0

    def allowed(self) -> np.ndarray:
        """Mask of the experts this step may use."""
        if self.total is None:
            limit = self.max_mean_cost * (self.served + 1)
            return self.spent + self.costs <= limit + _SLACK
        remaining = max(self.total - self.served - 1, 0)
        limit = self.max_mean_cost * self.total
        return self.spent + self.costs + remaining * self.costs.min() <= limit + _SLACK

    def spend(self, index: int) -> None:
        self.spent += float(self.costs[index])
        self.served += 1

    @property
    def mean_cost(self) -> float:
        return self.spent / self.served if self.served else 0.0


def lagrange_weight(scores: np.ndarray, costs: np.ndarray, max_mean_cost: float,
                    floor: float = 0.0, iterations: int = 60) -> float:
    """The smallest cost weight >= floor whose decisions on `scores` (prompts x experts) have a
    mean cost within max_mean_cost (mean cost never rises with the weight: bisection)."""

    def mean_cost(weight: float) -> float:
        return float(costs[np.argmax(scores - weight * costs, axis=1)].mean())

    if len(scores) == 0 or mean_cost(floor) <= max_mean_cost + _SLACK:
        return floor
    distinct = np.unique(costs)
    gap = float(np.min(np.diff(distinct))) if len(distinct) > 1 else 1.0
    hi = max(2.0 * floor, 1.0 / gap)  # scores span at most 1: beyond this, the cheapest wins
    while mean_cost(hi) > max_mean_cost + _SLACK and hi < 1e12:
        hi *= 2.0
    lo = floor
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        if mean_cost(mid) > max_mean_cost + _SLACK:
            lo = mid
        else:
            hi = mid
    return hi


class Router(ABC):
    """Predicts a score per expert from prompt text; decides with the shared cost-aware rule."""

    def __init__(self, experts: Sequence[str], costs: Sequence[float]):
        if len(experts) != len(costs) or not experts:
            raise ValueError("a router needs one cost per expert, and at least one expert")
        self.experts = list(experts)
        self.costs = np.asarray(costs, dtype=np.float64)

    @abstractmethod
    def scores(self, prompt: str) -> np.ndarray:
        """Predicted score in [0, 1] of each expert (in `self.experts` order) on `prompt`."""

    def scores_and_kind(self, prompt: str) -> tuple[np.ndarray, str | None]:
        """Scores and the kind of work recognised in `prompt` (None: this router learned no
        kinds); one pass, so a route can say what the policy took the prompt for."""
        return self.scores(prompt), None

    def score_many(self, prompts: Sequence[str]) -> np.ndarray:
        """Scores of many prompts, prompts x experts."""
        if not prompts:
            return np.zeros((0, len(self.experts)))
        return np.stack([self.scores(p) for p in prompts])

    def _decision(self, s: np.ndarray, index: int, utility: np.ndarray,
                  allowed: np.ndarray | None) -> Decision:
        excluded = () if allowed is None else tuple(
            e for e, ok in zip(self.experts, allowed) if not ok)
        return Decision(index, self.experts[index], dict(zip(self.experts, map(float, s))),
                        float(utility[index]), excluded)

    def route(self, prompt: str, cost_weight: float = 0.0, extra: np.ndarray | None = None,
              budget: Budget | None = None) -> Decision:
        """Route one prompt (a session's budget, when given, is charged for the choice)."""
        s = self.scores(prompt)
        allowed = budget.allowed() if budget is not None else None
        index = decide(s, self.costs, cost_weight, extra, allowed)
        if budget is not None:
            budget.spend(index)
        utility = s - cost_weight * self.costs - (0.0 if extra is None else extra)
        return self._decision(s, index, utility, allowed)

    def route_batch(self, prompts: Sequence[str], cost_weight: float = 0.0,
                    max_mean_cost: float | None = None) -> list[Decision]:
        """Route a batch; with max_mean_cost, the batch's mean cost never exceeds it."""
        all_scores = self.score_many(prompts)
        return self.decide_batch(all_scores, cost_weight, max_mean_cost)

    def decide_batch(self, all_scores: np.ndarray, cost_weight: float = 0.0,
                     max_mean_cost: float | None = None) -> list[Decision]:
        """The batch decision on precomputed scores (prompts x experts)."""
        budget = None
        if max_mean_cost is not None:
            budget = Budget(max_mean_cost, self.costs, total=len(all_scores))
            cost_weight = lagrange_weight(all_scores, self.costs, max_mean_cost, cost_weight)
        out = []
        for s in all_scores:
            allowed = budget.allowed() if budget is not None else None
            index = decide(s, self.costs, cost_weight, None, allowed)
            if budget is not None:
                budget.spend(index)
            out.append(self._decision(s, index, s - cost_weight * self.costs, allowed))
        return out
