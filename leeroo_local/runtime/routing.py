"""`--expert auto` at run time: the universe's members scored by the ONNX policy, costs and the
expected cost of a swap weighed, one member chosen with a short human reason.

    utility = predicted score - cost_weight x cost - swap_penalty x expected load seconds

- Predicted score: the policy's output for the member, measured at the member's quantization
  when the policy has it, else the full-precision output times the quantization's degradation
  factor (degradation.py, as the fit uses).
- A member with no outcome data in the policy is scored as the mean of the members that have
  data (a warning is logged once, and the reason says so): the documented fallback, never a
  silent guess.
- Cost: GB of weights read per generated token (file size x active / total parameters), what a
  token costs on a memory-bound CPU; 0 for a remote expert.
- Swap: a member not loaded now would first be loaded: its expected load time (the last
  measured load, else 0.2 s + size / 1 GB/s) and energy (x watts_per_core x threads) count, so a
  close call goes to a loaded member.
- A session budget (Settings.max_mean_cost) excludes members by the policy's budget rule.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..catalog import Catalog, OpenAISource
from ..degradation import default_model
from ..errors import NoExpertLeft
from ..policy.base import Budget, Router, decide
from ..universe import Member, Universe

log = logging.getLogger(__name__)

LOAD_BASE_S = 0.2
LOAD_BYTES_PER_S = 1e9


@dataclass(frozen=True)
class Choice:
    """The routed member and what the service puts into Route."""

    member: Member
    scores: dict[str, float]
    reason: str
    task: str | None = None


@dataclass(frozen=True)
class _Binding:
    output: int | None   # policy output index, None: no outcome data
    factor: float        # multiplier on that output (quantization)


class UniverseRouter:
    """A policy bound to the universe's members (built once per Service)."""

    def __init__(self, router: Router, name: str, universe: Universe, catalog: Catalog,
                 cost_weight: float = 0.0, swap_penalty: float = 0.0, watts: float = 10.0,
                 threads: int = 1, max_mean_cost: float = 0.0,
                 quants: list[str | None] | None = None):
        self.router = router
        self.name = name
        self.members = list(universe.members)
        self.catalog = catalog
        self.cost_weight = cost_weight
        self.swap_penalty = swap_penalty
        self.watts = watts * max(threads, 1)
        quants = quants or [None] * len(router.experts)
        self.bindings = [self._bind(m, quants) for m in self.members]
        self.costs = np.array([self._cost(m) for m in self.members])
        self.missing = [m.expert for m, b in zip(self.members, self.bindings) if b.output is None]
        for expert in self.missing if self.covers_any else []:
            log.warning("policy %s has no outcome data for %s: it is scored as the mean of the "
                        "other experts", name, expert)
        self.budget = Budget(max_mean_cost, self.costs) if max_mean_cost > 0 else None

    @property
    def covers_any(self) -> bool:
        return len(self.missing) < len(self.members)

    def _names(self, member: Member) -> set[str]:
        """The names the policy may know a member by: its id, and for a remote member the model
        its host serves (a host's `tiny-1` is `desk.tiny-1` here; hosts.py)."""
        source = self.catalog.get(member.expert).source
        return {member.expert, source.model} if isinstance(source, OpenAISource) else {member.expert}

    def _bind(self, member: Member, quants: list[str | None]) -> _Binding:
        degrade = default_model()
        outputs = [j for j, e in enumerate(self.router.experts) if e in self._names(member)]
        if not outputs:
            return _Binding(None, 1.0)
        exact = [j for j in outputs if (quants[j] or "").upper() == member.quant.upper()]
        if exact:
            return _Binding(exact[0], 1.0)
        full = [j for j in outputs if quants[j] is None]
        j = full[0] if full else outputs[0]
        quant = quants[j]
        base = degrade.factor(quant) if quant else 1.0
        return _Binding(j, degrade.factor(member.quant) / base)

    def _cost(self, member: Member) -> float:
        expert = self.catalog.get(member.expert)
        if expert.remote:
            return 0.0
        quant = expert.quant(member.quant)
        share = expert.arch.active_params_b / expert.arch.params_b if expert.arch else 1.0
        return quant.size_bytes * share / 1e9

    def expected_load_s(self, member: Member, measured: float | None) -> float:
        if measured:
            return measured
        expert = self.catalog.get(member.expert)
        if expert.remote:
            return 0.0
        return LOAD_BASE_S + expert.quant(member.quant).size_bytes / LOAD_BYTES_PER_S

    def scores(self, prompt: str) -> np.ndarray:
        """Predicted score of each member (fallback: the mean of the members with data)."""
        return self.scores_and_kind(prompt)[0]

    def scores_and_kind(self, prompt: str) -> tuple[np.ndarray, str | None]:
        """Member scores, and the kind of work the policy recognised (None: it learned none)."""
        raw, kind = self.router.scores_and_kind(prompt)
        out = np.array([raw[b.output] * b.factor if b.output is not None else np.nan
                        for b in self.bindings])
        known = out[~np.isnan(out)]
        return np.where(np.isnan(out), known.mean() if len(known) else 0.5, out), kind

    def choose(self, prompt: str, loaded: Callable[[Member], bool],
               measured_load_s: Callable[[Member], float | None],
               eligible: Callable[[Member], bool] | None = None) -> Choice:
        """The member to answer `prompt`, among the `eligible` ones (eligibility.py: not failed,
        not backing off, local when the prompt must stay here) and those the budget affords."""
        s, kind = self.scores_and_kind(prompt)
        load = np.array([0.0 if loaded(m) else self.expected_load_s(m, measured_load_s(m))
                         for m in self.members])
        extra = self.swap_penalty * load
        allowed = self.budget.allowed() if self.budget else None
        if eligible is not None:
            mask = np.array([eligible(m) for m in self.members])
            if not mask.any():
                raise NoExpertLeft("no member of the universe may answer this request")
            allowed = mask if allowed is None else (allowed & mask)
            if not allowed.any():  # the budget's choice is gone: the cheapest eligible one
                allowed = mask & (self.costs <= self.costs[mask].min())
        pick = decide(s, self.costs, self.cost_weight, extra, allowed)
        if self.budget:
            self.budget.spend(pick)
        plain = decide(s, self.costs, 0.0, None, None)
        reason = self._reason(s, pick, plain, load, allowed)
        if kind:
            reason += f"; recognised as {kind}"
        return Choice(self.members[pick], {m.expert: round(float(v), 4) for m, v in zip(self.members, s)},
                      reason, kind)

    def _reason(self, s, pick, plain, load, allowed) -> str:
        ids = [m.expert for m in self.members]
        text = f"policy {self.name}: {ids[pick]} predicted {s[pick]:.2f}"
        if pick == plain:
            others = [int(j) for j in np.argsort(-s, kind="stable") if j != pick]
            if others:
                text += f", best of {len(ids)} (next {ids[others[0]]} {s[others[0]]:.2f})"
        elif allowed is not None and not allowed[plain]:
            text += f"; {ids[plain]} ({s[plain]:.2f}) is over the mean-cost budget"
        elif load[plain] > load[pick] and load[pick] == 0:
            text += (f"; {ids[plain]} ({s[plain]:.2f}) is not loaded (~{load[plain]:.1f} s, "
                     f"~{load[plain] * self.watts:.0f} J to load), so the close call goes to the "
                     f"loaded {ids[pick]}")
        elif load[plain] > load[pick]:
            text += (f"; {ids[plain]} ({s[plain]:.2f}) would take longer to load "
                     f"(~{load[plain]:.1f} s vs ~{load[pick]:.1f} s)")
        else:
            text += f"; cheaper than {ids[plain]} ({s[plain]:.2f}) at cost weight {self.cost_weight:g}"
        if self.bindings[pick].output is None:
            text += f"; {ids[pick]} has no outcome data: scored as the mean of the others"
        return text
