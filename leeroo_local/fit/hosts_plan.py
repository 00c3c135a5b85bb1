"""`fit --host NAME=SIZE`: place the universe's experts on several machines.

Each host is a knapsack of its own (its memory, counted as `plan` counts it: with a GPU budget
the compute buffer is charged on top); the routed objective is taken over every placed expert
together, since the router of this machine picks among all of them; a question routed to another
host costs NETWORK_PENALTY of accuracy (fit.placement), so that this machine wins ties and an
expert is sent over the network only for what it adds. Placement is resident only: each host
holds its members loaded at once.
"""

from __future__ import annotations

import math
import re

import numpy as np
from pydantic import BaseModel, Field

from . import greedy as fitlib
from . import placement as fit_placement
from . import predictions as fit_predictions
from . import routed as fit_routed
from ..catalog import Catalog
from ..degradation import DegradationModel
from ..errors import BudgetTooSmall, ConfigError
from ..store.outcomes import OutcomeMatrix
from ..units import format_size, parse_size
from .plan import (FitBudget, _first_best_shares, _member, build_candidates, prediction_columns,
                   routed_predictions)
from .report import BestSingle, FitReport, HostPlan, PlanBudget, PredictionsUsed

NETWORK_PENALTY = 0.002
"""Accuracy charged per question routed to another host: 0.2 points. What it stands for: on a
LAN a remote answer adds a round trip, a connection and SSE framing, a few to tens of
milliseconds on answers of seconds (under 1% of the time), and a dependence on a second machine
staying up. It is a tie-breaker, not a price: small beside what an expert that earns its place
adds (min-share is 2% of the questions), so a useful expert goes to another host rather than
being left out, yet an expert that adds no more than 0.2 points of accuracy stays here or is
not placed. `fit --network-penalty` changes it."""

LOCAL = "local"
"""The name under which --vram/--ram (this machine) joins the hosts."""

_SPEC = re.compile(r"^(?P<name>[a-z0-9][a-z0-9-]{0,31})=(?P<gpu>gpu:)?(?P<size>.+)$")


class HostBudget(BaseModel):
    """One machine's budget for the experts it will hold."""

    name: str = Field(description="The host's name (`hosts add`), or `local`: this machine.")
    memory_bytes: int = Field(gt=0, description="Memory for its experts.")
    gpu: bool = Field(default=False, description="The memory is a GPU's (compute buffer counted).")
    local: bool = Field(default=False, description="This machine (no network cost).")

    @classmethod
    def parse(cls, spec: str) -> HostBudget:
        """NAME=SIZE (system memory, CPU only) or NAME=gpu:SIZE; ConfigError naming the form."""
        found = _SPEC.match(spec.strip())
        if not found:
            raise ConfigError(f"--host {spec!r}: write NAME=SIZE or NAME=gpu:SIZE, e.g. "
                              "desk=gpu:24GB (NAME: lower case letters, digits, dashes)")
        try:
            size = parse_size(found["size"])
        except ValueError as exc:
            raise ConfigError(f"--host {spec!r}: {exc}") from None
        return cls(name=found["name"], memory_bytes=size, gpu=bool(found["gpu"]),
                   local=found["name"] == LOCAL)

    def words(self) -> str:
        kind = "GPU" if self.gpu else "RAM"
        return f"{self.name} {kind} {format_size(self.memory_bytes, binary=False)}"


def hosts_of(specs: list[str], vram: int | None = None, ram: int | None = None) -> list[HostBudget]:
    """The hosts of `--host` flags, with --vram/--ram as this machine's (`local`)."""
    hosts = [HostBudget.parse(s) for s in specs]
    if vram or ram:
        if any(h.name == LOCAL for h in hosts):
            raise ConfigError("this machine's budget is given twice: --host local=... and "
                              "--vram/--ram")
        hosts.insert(0, HostBudget(name=LOCAL, memory_bytes=(vram or 0) + (ram or 0),
                                   gpu=bool(vram), local=True))
    names = [h.name for h in hosts]
    if len(set(names)) != len(names):
        raise ConfigError(f"a host is named twice: {', '.join(names)}")
    return hosts


def plan_hosts(
    catalog: Catalog, matrix: OutcomeMatrix, hosts: list[HostBudget], budget: FitBudget,
    data_label: str = "", degradation: DegradationModel | None = None,
    predictions: fit_predictions.Predictions | None = None, log=None,
    network_penalty: float = NETWORK_PENALTY,
) -> FitReport:
    """Place experts on `hosts` (budget gives the context, size limit, min gain and share);
    BudgetTooSmall when no expert fits any host."""
    if budget.mode != "resident" or budget.objective != "routed":
        raise ConfigError("fit --host places resident experts by the routed objective: "
                          "drop --swap and --objective oracle")
    sets = {(h.gpu, h.memory_bytes): build_candidates(
        catalog, matrix, FitBudget(vram_bytes=h.memory_bytes if h.gpu else None,
                                   ram_bytes=None if h.gpu else h.memory_bytes,
                                   n_ctx=budget.n_ctx, include_base=budget.include_base),
        degradation) for h in hosts}
    cs = next(iter(sets.values()))
    cost = np.stack([sets[(h.gpu, h.memory_bytes)].memory() for h in hosts], axis=1)
    capacity = np.array([h.memory_bytes for h in hosts], np.float64)
    penalty = np.array([0.0 if h.local else network_penalty for h in hosts])
    predictions = predictions or fit_predictions.predictions(
        matrix, prediction_columns(catalog, matrix), log=log)
    pred = routed_predictions(cs, predictions)
    x = fit_placement.expand(cs.quality, pred, cost, cs.groups(), capacity, penalty)
    choice = fit_placement.place(x, capacity, max_items=budget.size_limit,
                                 min_gain=budget.min_gain, min_share=budget.min_share)
    if choice is None:
        smallest = min(cs.candidates, key=lambda c: c.memory_bytes)
        raise BudgetTooSmall(
            f"no expert fits any host ({'; '.join(h.words() for h in hosts)}): the smallest "
            f"with outcome data, {smallest.expert} at {smallest.quant}, needs "
            f"{format_size(smallest.memory_bytes, binary=False)} with a {budget.n_ctx}-token "
            "context")
    placed = list(choice.members)
    cands = [int(x.candidate[v]) for v in placed]
    where = [int(x.host[v]) for v in placed]
    factors = np.array([cs.candidates[j].factor for j in cands], np.float32)
    raw = cs.quality[:, cands] / np.where(factors > 0, factors, 1.0)
    routed = fit_routed.routed_values(cs.quality, pred, cands)
    single_v = int(np.lexsort((x.host, x.cost, -cs.quality[:, x.candidate].mean(axis=0)))[0])
    single = int(x.candidate[single_v])
    lead = routed - cs.quality[:, single]
    noise = 2 * float(lead.std(ddof=1)) / math.sqrt(len(lead)) if len(lead) > 1 else 1.0
    members = []
    for j, h, g, s, sh, osh in zip(cands, where, choice.gains, choice.running,
                                   fit_routed.shares(pred, cands), _first_best_shares(raw)):
        m = _member(cs.candidates[j], g, s, sh, osh)
        members.append(m.model_copy(update={"memory_bytes": int(cost[j, h]),
                                            "host": hosts[h].name}))
    plans = []
    for h, host in enumerate(hosts):
        mine = [m for m in members if m.host == host.name]
        plans.append(HostPlan(
            name=host.name, local=host.local, gpu=host.gpu, capacity_bytes=host.memory_bytes,
            used_bytes=sum(m.memory_bytes for m in mine), network_penalty=float(penalty[h]),
            members=[f"{m.id}@{m.quant}" for m in mine],
            pull=[f"leeroo-local pull {m.id} --quant {m.quant}" for m in mine]))
    remote_share = sum(m.share for m in members if not hosts[_index(hosts, m.host)].local)
    notes = [f"network cost: {100 * network_penalty:.2f} points per question routed to another "
             f"host; {100 * remote_share:.1f}% of questions go to one"]
    b = cs.candidates[single]
    return FitReport(
        experts=members, total_memory_bytes=sum(m.memory_bytes for m in members),
        total_disk_bytes=sum(m.disk_bytes for m in members), objective="routed",
        score=choice.score, routed_score=float(routed.mean(dtype=np.float64)),
        oracle_score=fitlib.coverage(cs.quality, cands), noise=noise,
        recommend="universe" if len(members) > 1 and float(lead.mean()) > noise else "single",
        best_single=BestSingle(id=b.expert, quant=b.quant, memory_bytes=int(x.cost[single_v]),
                               score=float(cs.quality[:, single].mean(dtype=np.float64)),
                               data_column=b.data_column),
        dropped=[f"{cs.candidates[x.candidate[v]].expert}@{cs.candidates[x.candidate[v]].quant}"
                 for v in choice.dropped],
        min_share=budget.min_share,
        predictions=PredictionsUsed(source=predictions.source,
                                    folds=int(predictions.fold.max()) + 1,
                                    seconds=round(predictions.seconds, 1), key=predictions.key),
        mode="resident", n_ctx=budget.n_ctx,
        budget=PlanBudget(vram_bytes=None, ram_bytes=None, disk_bytes=None,
                          capacity_bytes=int(capacity.sum()), max_experts=budget.size_limit),
        rule=f"resident on {len(hosts)} hosts: each host's experts (weights, KV cache for "
             f"{budget.n_ctx} tokens, buffers; a GPU's compute buffer) must fit its memory: "
             + ", ".join(h.words() for h in hosts),
        strategy=choice.strategy, alternatives=choice.alternatives, swap_share=None,
        n_questions=cs.quality.shape[0], n_candidates=int(x.candidate.size), data=data_label,
        skipped=cs.skipped, notes=notes, hosts=plans,
    )


def _index(hosts: list[HostBudget], name: str | None) -> int:
    return next(i for i, h in enumerate(hosts) if h.name == name)
