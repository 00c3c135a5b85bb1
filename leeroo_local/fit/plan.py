"""From catalog, outcome data and budget to a universe: the thin layer around `fit`.

Candidates are (expert, quantization) pairs of the catalog. Each one's quality column is its
measured outcomes (`<column>@<QUANT>` in the data) when there are some, else its full-precision
column times a degradation factor (leeroo_local.degradation): the one `quant eval` measured for
that pair, else the type's factor calibrated by measurements of other experts, else the table.
Each candidate says which (`quality_basis`). Its cost is the memory the memory model predicts at
`n_ctx`, or, in swap mode, its size on disk.

The budget rule, kept simple on purpose:

- resident (default): every expert is loaded at once. The sum of their memory must fit in the
  budget: --vram alone (everything on the GPU), --ram alone (CPU only), or --vram + --ram when
  both are given (llama.cpp puts on the GPU the layers that fit there and keeps the rest in RAM).
  With --vram each expert is charged its GPU compute buffer on top of weights, KV cache and
  buffers.
- swap (--swap): experts are loaded on demand, one at a time. Each must fit the budget alone; the
  universe is bounded by --max-experts and by --disk (the sum of the files).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field, model_validator

from . import greedy as fitlib
from . import predictions as fit_predictions
from . import routed as fit_routed
from ..catalog import Catalog
from ..degradation import DegradationModel, default_model
from ..errors import BudgetTooSmall, DataError
from ..memory import estimate, gpu_compute_bytes, shape_from_catalog
from ..store.outcomes import OutcomeMatrix, column_name, split_column
from .candidates import NO_OUTCOMES, Candidate, CandidateSet
from .report import (BestSingle, FitMember, FitReport, PlanBudget, PredictionsUsed, Skipped,
                     SourceFit)
from ..units import format_size

SWAP_MAX_EXPERTS = 4


class FitBudget(BaseModel):
    """What the universe must fit in, and how it will be run."""

    vram_bytes: int | None = Field(default=None, gt=0, description="GPU memory for experts.")
    ram_bytes: int | None = Field(default=None, gt=0, description="System memory for experts.")
    disk_bytes: int | None = Field(default=None, gt=0, description="Disk for the files (swap).")
    n_ctx: int = Field(default=4096, gt=0, description="Context every expert must hold.")
    mode: Literal["resident", "swap"] = Field(default="resident", description="See module doc.")
    max_experts: int | None = Field(default=None, gt=0, description="Largest universe allowed.")
    min_gain: float = Field(default=0.0, ge=0.0, description="Stop when no expert adds more to "
                                                             "the objective.")
    objective: Literal["routed", "oracle"] = Field(
        default="routed", description="routed: accuracy of the shipped router's cross-validated "
        "picks among the members; oracle: the paper's S(U), the best member per question.")
    min_share: float = Field(default=0.02, ge=0.0, le=1.0, description="With the routed objective, "
                             "a member the router sends fewer questions is dropped.")
    include_base: bool = Field(
        default=False, description="Let base models (no chat template) join. Chat, serve and "
        "editors need instruct experts, so base models join only when asked (`fit --base`), or "
        "when the data has outcomes for no instruct expert (the starter data).")

    @model_validator(mode="after")
    def _some_memory(self) -> FitBudget:
        if not self.vram_bytes and not self.ram_bytes:
            raise ValueError("give a memory budget: --vram, --ram or both")
        return self

    @property
    def capacity(self) -> int:
        return (self.vram_bytes or 0) + (self.ram_bytes or 0)

    @property
    def size_limit(self) -> int | None:
        return self.max_experts or (SWAP_MAX_EXPERTS if self.mode == "swap" else None)

    def fits_alone(self, memory: np.ndarray) -> np.ndarray:
        """Which candidates fit the memory by themselves (in either mode, none that does not can
        be a member)."""
        return np.asarray(memory, np.float64) <= self.capacity

    def costs(self, memory: np.ndarray, disk: np.ndarray) -> tuple[np.ndarray, float]:
        """Each candidate's cost and the limit their sum must stay within (the module's rule):
        resident, memory against the capacity; swap, files against the disk, and an infinite
        cost for a candidate that does not fit the memory alone."""
        memory, disk = np.asarray(memory, np.float64), np.asarray(disk, np.float64)
        if self.mode == "swap":
            limit = float(self.disk_bytes or math.inf)
            return np.where(self.fits_alone(memory), disk, math.inf), limit
        return memory, float(self.capacity)

    def fits(self, memory: list[int], disk: list[int]) -> bool:
        """Whether a universe of these members (memory and file bytes of each) fits the budget:
        the rule `plan` chooses under, for callers that judge one set (onboarding)."""
        cost, limit = self.costs(np.asarray(memory), np.asarray(disk))
        if self.size_limit is not None and len(cost) > self.size_limit:
            return False
        return bool(np.isfinite(cost).all() and cost.sum() <= limit)

    def memory_words(self) -> str:
        v, r = self.vram_bytes, self.ram_bytes
        if v and r:
            return f"VRAM + RAM = {_gb(v)} + {_gb(r)} = {_gb(v + r)}"
        return f"VRAM {_gb(v)}" if v else f"RAM {_gb(r)} (CPU only)"

    def rule(self) -> str:
        """The budget rule in words, for the output."""
        what = f"weights, KV cache for {self.n_ctx} tokens, buffers"
        if self.vram_bytes:
            what += ", GPU compute buffer"
        if self.mode == "resident":
            extra = f", at most {self.max_experts} experts" if self.max_experts else ""
            return f"resident: all experts loaded at once; their total memory ({what}) " \
                   f"must fit in {self.memory_words()}{extra}"
        disk = f" and files within {_gb(self.disk_bytes)} of disk" if self.disk_bytes else ""
        return f"swap: one expert loaded at a time; each ({what}) must fit in " \
               f"{self.memory_words()}; at most {self.size_limit} experts{disk}"


def build_candidates(
    catalog: Catalog, matrix: OutcomeMatrix, budget: FitBudget,
    degradation: DegradationModel | None = None,
) -> CandidateSet:
    """Every catalog (expert, quant) with outcome data, its quality column and its memory.

    Base models are left out unless the budget includes them, except when the data has
    outcomes for no instruct expert at all (then they join, with a note)."""
    degradation = degradation or default_model()
    cands, skipped = _collect(catalog, matrix, budget, degradation, budget.include_base)
    notes = []
    if not cands and not budget.include_base and any(s.reason == BASE_REASON for s in skipped):
        cands, skipped = _collect(catalog, matrix, budget, degradation, True)
        notes.append("the data has outcomes for base models only (no chat template): they join, "
                     "but chat needs an instruct expert")
    if not cands:
        raise DataError("no catalog expert has outcomes in the data (their data_column must "
                        "match a column of outcomes.csv) and holds the context: "
                        + "; ".join(f"{s.id}: {s.reason}" for s in skipped))
    return CandidateSet(cands, *_quality(matrix, cands), skipped, notes)


BASE_REASON = "base model (no chat template): `fit --base` includes it"


def _collect(catalog, matrix, budget, degradation, include_base):
    present = set(matrix.experts)
    cands: list[Candidate] = []
    skipped: list[Skipped] = []
    for e in catalog.experts:
        if e.remote:
            skipped.append(Skipped(id=e.id, reason="remote expert (served by another machine)"))
            continue
        name = outcome_name(e, present)
        if not e.columns() and not any(split_column(c)[0] == name for c in present):
            skipped.append(Skipped(id=e.id, reason="no outcome data column in the catalog"))
            continue
        if not any(split_column(c)[0] == name for c in present):
            skipped.append(Skipped(id=e.id, reason=NO_OUTCOMES))
            continue
        if not e.instruct and not include_base:
            skipped.append(Skipped(id=e.id, reason=BASE_REASON))
            continue
        if e.arch.n_ctx_train < budget.n_ctx:
            skipped.append(Skipped(id=e.id, reason=f"trained for {e.arch.n_ctx_train} tokens of "
                                                  f"context, less than --ctx {budget.n_ctx}"))
            continue
        base = name if name in present else None
        reference = None if base else _measured_reference(e, name, present, degradation)
        for q in e.quants:
            measured = column_name(name, q.type)
            if measured in present:
                column, factor, basis, kind = measured, 1.0, "measured", "outcomes"
            elif base:
                d = degradation.lookup(q.type, expert=e.id)
                column, factor, basis, kind = base, d.factor, f"x{d.factor:.3f} ({d.basis})", d.kind
            elif reference:
                ref_quant, ref_factor = reference
                d = degradation.lookup(q.type, expert=e.id)
                factor = min(1.0, d.factor / ref_factor) if ref_factor > 0 else d.factor
                column, kind = column_name(name, ref_quant), d.kind
                basis = f"x{factor:.3f} of {ref_quant} measured ({d.basis})"
            else:
                skipped.append(Skipped(id=e.id, quant=q.type,
                                       reason=f"column {name!r} is not in the data"))
                continue
            shape = shape_from_catalog(e, q)
            est = estimate(shape, budget.n_ctx, vram_bytes=budget.vram_bytes)
            memory = est.total_bytes + (gpu_compute_bytes(shape, budget.n_ctx) if budget.vram_bytes else 0)
            cands.append(Candidate(e.id, q.type, name, column, factor, basis, int(memory),
                                   est.gpu_bytes, est.cpu_bytes, q.size_bytes, kind))
    return cands, skipped


def outcome_name(expert, present: set[str] | None = None) -> str:
    """The name an expert's outcomes are stored under: the first of its columns (data_column,
    then aliases) that the data has, else its data_column, else its catalog id (self-play
    writes outcomes for experts the shipped data does not cover)."""
    if present is not None:
        bases = {split_column(c)[0] for c in present}
        for name in expert.columns() + [expert.id]:
            if name in bases:
                return name
    return expert.data_column or expert.id


def _measured_reference(expert, name: str, present: set[str],
                        degradation: DegradationModel) -> tuple[str, float] | None:
    """With no full-precision column: the measured quantization other quantizations are scaled
    from (the best by factor) and its factor. Scaling up is capped at x1.0: a finer quantization
    is never credited with accuracy nobody measured."""
    measured = [q.type for q in expert.quants if column_name(name, q.type) in present]
    if not measured:
        return None
    factors = {q: degradation.lookup(q, expert=expert.id).factor for q in measured}
    best = max(measured, key=lambda q: factors[q])
    return best, factors[best]


def _quality(matrix: OutcomeMatrix, cands: list[Candidate]) -> tuple[np.ndarray, list[str]]:
    """Quality [questions x candidates]; questions no candidate was run on are dropped, and a
    missing cell takes its column's mean (the expected score of that expert)."""
    columns = sorted({c.column for c in cands})
    raw = matrix.select(columns).scores.astype(np.float32)
    keep = ~np.isnan(raw).all(axis=1)
    raw = raw[keep]
    if not raw.shape[0]:
        raise DataError("the data has no outcomes for the catalog's experts")
    means = np.nanmean(raw, axis=0)
    raw = np.where(np.isnan(raw), means[None, :], raw)
    pos = {c: i for i, c in enumerate(columns)}
    quality = np.stack([raw[:, pos[c.column]] * np.float32(c.factor) for c in cands], axis=1)
    ids = [qid for qid, k in zip(matrix.question_ids, keep) if k]
    return np.ascontiguousarray(quality, dtype=np.float32), ids


def plan(
    catalog: Catalog, matrix: OutcomeMatrix, budget: FitBudget, data_label: str = "",
    degradation: DegradationModel | None = None,
    predictions: fit_predictions.Predictions | None = None, log=None,
) -> FitReport:
    """Choose the universe for `budget` on one outcome source; BudgetTooSmall when no expert fits.

    The routed objective and the report need cross-validated predictions for the data's
    questions (their texts: load the matrix with questions); they are computed once per data
    and cached (fit_predictions), or passed in as `predictions`."""
    return plan_sources(catalog, [SourceData("data", data_label, matrix, predictions)], budget,
                        degradation, log)


@dataclass
class SourceData:
    """One outcome source for plan_sources: its name, label, matrix (with question texts) and,
    optionally, its cross-validated predictions."""

    name: str
    label: str
    matrix: OutcomeMatrix
    predictions: fit_predictions.Predictions | None = None


def plan_sources(catalog: Catalog, sources: list[SourceData], budget: FitBudget,
                 degradation: DegradationModel | None = None, log=None) -> FitReport:
    """Choose one universe over several outcome sources (fit.combine: each source's questions
    score only the experts measured on them, every source weighs the same) and report what it
    does on each. A source no catalog expert has outcomes for is left out with a note."""
    from . import combine as fit_combine

    parts, used, notes = [], [], []
    for src in sources:
        try:
            cs = build_candidates(catalog, src.matrix, budget, degradation)
        except DataError as exc:
            if len(sources) == 1:
                raise
            notes.append(f"{src.name} left out: {exc}")
            continue
        preds = src.predictions or fit_predictions.predictions(
            src.matrix, prediction_columns(catalog, src.matrix), log=log)
        parts.append(fit_combine.SourcePart(src.name, cs, routed_predictions(cs, preds)))
        used.append((src, preds))
        if not any(src.matrix.questions.get(q) for q in cs.question_ids[:50]):
            notes.append(("" if len(sources) == 1 else f"{src.name}: ") + "the data has no "
                         "question texts: the router can only predict each expert's mean, so it "
                         "routes every question to one expert")
    if not parts:
        raise DataError("; ".join(notes))
    combined = fit_combine.combine(parts)
    cs, pred = combined.cs, combined.pred
    memory = cs.memory()
    fits = budget.fits_alone(memory)
    if not fits.any():
        raise BudgetTooSmall(_too_small(cs, budget))
    cost, limit = budget.costs(memory, cs.disk())
    too_big = sorted({cs.candidates[i].expert for i in np.flatnonzero(~fits)}
                     - {cs.candidates[i].expert for i in np.flatnonzero(fits)})
    if too_big:
        notes.insert(0, f"{len(too_big)} expert(s) need more than the budget at every "
                        f"quantization: {', '.join(too_big)}")
    usable = np.flatnonzero(np.isfinite(cost))
    q, p, groups = cs.quality[:, usable], pred[:, usable], cs.groups()[usable]
    if budget.objective == "routed":
        choice = fit_routed.fit(q, p, cost[usable], groups, limit, max_items=budget.size_limit,
                                min_gain=budget.min_gain, min_share=budget.min_share)
    else:
        choice = fitlib.fit(q, cost[usable], groups, limit, max_items=budget.size_limit,
                            min_gain=budget.min_gain)
    if choice is None:
        raise BudgetTooSmall(f"no expert's files fit in {_gb(budget.disk_bytes)} of disk")
    members = [int(usable[i]) for i in choice.members]
    # Which expert is best for a request (oracle shares): judged on outcomes before degradation,
    # so a factor (x0.942 against x0.994) does not make one of two correct experts "better".
    factors = np.array([cs.candidates[j].factor for j in members], np.float32)
    raw = cs.quality[:, members] / np.where(factors > 0, factors, 1.0)
    oracle_shares = _first_best_shares(raw)
    routed_shares = fit_routed.shares(pred, members)
    if budget.mode == "swap":
        swap = (1.0 - sum(s * s for s in routed_shares) if budget.objective == "routed"
                else fitlib.swap_share(raw, range(len(members)))[0])
    single = int(usable[fitlib.best_single(q, cost[usable], limit)])
    routed = fit_routed.routed_values(cs.quality, pred, members)
    lead = routed - cs.quality[:, single]
    noise = 2 * float(lead.std(ddof=1)) / math.sqrt(len(lead)) if len(lead) > 1 else 1.0
    routed_score = float(routed.mean(dtype=np.float64))
    recommend = "universe" if len(members) > 1 and float(lead.mean()) > noise else "single"
    dropped = [f"{cs.candidates[usable[i]].expert}@{cs.candidates[usable[i]].quant}"
               for i in choice.dropped]
    return FitReport(
        experts=[_member(cs.candidates[j], g, s, sh, osh) for j, g, s, sh, osh
                 in zip(members, choice.gains, choice.running, routed_shares, oracle_shares)],
        total_memory_bytes=int(memory[members].sum()),
        total_disk_bytes=int(cs.disk()[members].sum()),
        objective=budget.objective, score=choice.score, routed_score=routed_score,
        oracle_score=fitlib.coverage(cs.quality, members), noise=noise, recommend=recommend,
        best_single=_best_single(cs, single, cs.quality[:, single]),
        dropped=dropped, min_share=budget.min_share if budget.objective == "routed" else 0.0,
        predictions=_predictions_used([pr for _, pr in used]),
        mode=budget.mode, n_ctx=budget.n_ctx,
        budget=PlanBudget(vram_bytes=budget.vram_bytes, ram_bytes=budget.ram_bytes,
                          disk_bytes=budget.disk_bytes, capacity_bytes=budget.capacity,
                          max_experts=budget.size_limit),
        rule=budget.rule(), strategy=choice.strategy, alternatives=choice.alternatives,
        swap_share=swap if budget.mode == "swap" else None,
        n_questions=cs.quality.shape[0], n_candidates=int(usable.size),
        data=" + ".join(src.label for src, _ in used), skipped=cs.skipped,
        notes=notes + cs.notes,
        sources=[] if len(sources) == 1 else _per_source(combined, used, members, usable, cost, limit),
    )


def _per_source(combined, used, members, usable, cost, limit) -> list[SourceFit]:
    """Each source's routed and oracle accuracy of the universe, and its best single expert."""
    out = []
    cs, candidates = combined.cs, combined.cs.candidates
    fits = usable[cost[usable] <= limit + 1e-9]
    for i, (src, preds) in enumerate(used):
        rows, has = combined.rows[i], combined.has[i]
        raw, pred = combined.raw[rows], combined.pred[rows]
        on = [j for j in members if has[j]]
        single = [j for j in fits if has[j]]
        best = max(single, key=lambda j: (float(raw[:, j].mean(dtype=np.float64)), -cost[j]),
                   default=None)
        out.append(SourceFit(
            name=src.name, label=src.label, n_questions=raw.shape[0],
            routed_score=float(fit_routed.routed_values(raw, pred, on).mean(dtype=np.float64))
            if on else None,
            oracle_score=fitlib.coverage(raw, on) if on else None,
            members=[f"{candidates[j].expert}@{candidates[j].quant}" for j in on],
            best_single=None if best is None else _best_single(cs, best, raw[:, best]),
            predictions=_predictions_used([preds])))
    return out


def _best_single(cs: CandidateSet, j: int, values: np.ndarray) -> BestSingle:
    c = cs.candidates[j]
    return BestSingle(id=c.expert, quant=c.quant, memory_bytes=c.memory_bytes,
                      score=float(values.mean(dtype=np.float64)), data_column=c.data_column)


def _predictions_used(preds: list[fit_predictions.Predictions]) -> PredictionsUsed:
    """Where the predictions came from: shipped only when every source's were."""
    sources = {p.source for p in preds}
    source = next(s for s in ("computed", "cache", "shipped") if s in sources)
    return PredictionsUsed(source=source, folds=int(preds[0].fold.max()) + 1,
                           seconds=round(sum(p.seconds for p in preds), 1),
                           key="+".join(p.key for p in preds))


def prediction_columns(catalog: Catalog, matrix: OutcomeMatrix) -> list[str]:
    """The data columns of every local catalog expert: one prediction matrix serves any budget
    and context (so the shipped one and the cache are found again)."""
    names = {n for e in catalog.experts if not e.remote for n in e.columns() + [e.id]}
    return sorted(c for c in matrix.experts if split_column(c)[0] in names)


def routed_predictions(cs: CandidateSet, predictions: fit_predictions.Predictions) -> np.ndarray:
    """[questions x candidates]: each candidate's cross-validated prediction times its
    quantization factor, as routing.py scores a member at run time."""
    columns = sorted({c.column for c in cs.candidates})
    block = predictions.select(cs.question_ids, columns)
    pos = {c: i for i, c in enumerate(columns)}
    return np.stack([block[:, pos[c.column]] * np.float32(c.factor) for c in cs.candidates],
                    axis=1).astype(np.float32)


def _member(c: Candidate, gain: float, score: float, share: float, oracle_share: float) -> FitMember:
    return FitMember(id=c.expert, quant=c.quant, memory_bytes=c.memory_bytes, gain=gain,
                     score=score, data_column=c.data_column, quality=c.basis,
                     quality_basis=c.basis_kind, share=share, oracle_share=oracle_share,
                     disk_bytes=c.disk_bytes, gpu_bytes=c.gpu_bytes, cpu_bytes=c.cpu_bytes)


def _first_best_shares(values: np.ndarray) -> list[float]:
    """Share of questions each column is the best for (ties go to the earlier column)."""
    pick = (values >= values.max(axis=1, keepdims=True) - 1e-9).argmax(axis=1)
    return [float(x) for x in np.bincount(pick, minlength=values.shape[1]) / max(len(values), 1)]


def _too_small(cs: CandidateSet, budget: FitBudget) -> str:
    smallest = min(cs.candidates, key=lambda c: c.memory_bytes)
    return (f"no expert fits {budget.memory_words()}: the smallest with outcome data, "
            f"{smallest.expert} at {smallest.quant}, needs {_gb(smallest.memory_bytes)} with a "
            f"{budget.n_ctx}-token context (file {_gb(smallest.disk_bytes)}). "
            f"Raise --vram/--ram or lower --ctx.")


def _gb(n: int | None) -> str:
    return format_size(n or 0, binary=False)
