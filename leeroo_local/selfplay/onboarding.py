"""Onboarding: should a new expert join the universe, and at which quantization?

The new expert is run on a sample of stored questions that every member of the universe has
outcomes on (an `onboard` round: resumable like any other). Its marginal gain is the fit
objective's, F(U + e) - F(U) on the sample: by default the routed accuracy (fit_routed: what
the shipped trainer's policy, cross-validated on the store's questions, would get routing among
the members), with `objective="oracle"` the paper's S(U). Its quantizations other than the one
run are scaled by the degradation model, as `fit` does (fit_catalog.build_candidates). A
quantization joins as it is when the universe plus it fits the current budget and it gains more
than `min_gain`; when none fits beside the members, the fit is rerun over the members and the
new expert, and the verdict says whether that refit would take it (and what it would drop).
"""

from __future__ import annotations

import json
import math
import random

import numpy as np
from pydantic import BaseModel, Field
from sqlite_utils import Database

from ..fit import predictions as fit_predictions
from ..fit import routed as fit_routed
from ..catalog import Catalog
from ..degradation import DegradationModel
from ..errors import BudgetTooSmall, DataError
from ..fit.plan import (FitBudget, build_candidates, outcome_name, plan, prediction_columns,
                           routed_predictions)
from ..fit.outcome_sources import fit_degradation, fit_outcomes
from ..store.outcomes import split_column
from ..settings import Settings
from ..store import rounds as store
from ..universe import Universe
from ..units import format_size


class QuantOption(BaseModel):
    """One quantization of the new expert, judged beside the current universe."""

    quant: str = Field(description="Quantization type.")
    memory_bytes: int = Field(description="Predicted memory at the universe's context.")
    fits: bool = Field(description="The universe plus this quantization fits the budget.")
    gain: float = Field(description="F(U + it) - F(U) on the sample (fraction, not points); F "
                                    "is the objective (routed accuracy or S(U)).")
    quality: str = Field(description="measured, or the degradation factor applied and its basis.")


class OnboardReport(BaseModel):
    """The verdict on a new expert for the current universe and budget."""

    expert: str = Field(description="The expert considered.")
    quant_run: str = Field(description="The quantization it was run at.")
    questions: int = Field(description="Sampled questions it was scored on.")
    universe: list[str] = Field(description="Current members, as expert@quant.")
    objective: str = Field(default="routed", description="routed (the shipped router's "
                           "cross-validated accuracy) or oracle (S(U)).")
    universe_score: float = Field(description="F(U) on the sample (the objective's value).")
    single_score: float = Field(description="The new expert's own accuracy on the sample.")
    unique_wins: int = Field(description="Questions it gets right that no member does.")
    gain_stderr: float = Field(description="Binomial standard error of the measured gain.")
    options: list[QuantOption] = Field(description="Every quantization of the new expert.")
    join: bool = Field(description="Whether it should join the universe as it is.")
    quant: str | None = Field(description="The quantization to join at.")
    refit: list[str] | None = Field(
        default=None, description="When it fits only by refitting: the universe fit would choose.")
    budget: str = Field(description="The budget rule it was judged under.")
    reason: str = Field(description="The verdict in words.")


def current_budget(universe: Universe, settings: Settings) -> FitBudget:
    """The budget the universe was fit for, else the settings' budgets, else 80% of free RAM
    (what the pool would use)."""
    from ..hardware import available_ram
    from ..units import parse_size

    b = universe.budget or {}
    vram, ram = b.get("vram_bytes"), b.get("ram_bytes")
    if not vram and not ram:
        vram = parse_size(settings.vram_budget) if settings.vram_budget else None
        ram = parse_size(settings.ram_budget) if settings.ram_budget else None
    if not vram and not ram:
        ram = int(available_ram() * 0.8)
    # include_base: the universe's members and the candidate are the user's choice already
    return FitBudget(vram_bytes=vram or None, ram_bytes=ram or None,
                     disk_bytes=b.get("disk_bytes") or None, n_ctx=universe.n_ctx,
                     mode=universe.mode, include_base=True)


def sample_questions(db: Database, catalog: Catalog, universe: Universe, n: int,
                     rng: random.Random, multiple_choice: bool = True,
                     max_chars: int | None = None) -> list[str]:
    """Up to n stored questions with an outcome of every member at its quantization."""
    need = {(outcome_name(catalog.get(m.expert)), m.quant.upper()) for m in universe.members}
    rows = db.execute("SELECT id, text, options FROM questions").fetchall()
    ok = [r[0] for r in rows if (not multiple_choice or json.loads(r[2] or "[]"))
          and (max_chars is None or len(r[1]) + sum(map(len, json.loads(r[2] or "[]"))) <= max_chars)]
    have = store.evaluated_columns(db, ok)
    eligible = sorted(q for q in ok if need <= {(e, (qq or "").upper()) for e, qq in have[q]})
    return rng.sample(eligible, min(n, len(eligible)))


def verdict(catalog: Catalog, universe: Universe, db: Database, expert: str, quant_run: str,
            question_ids: list[str], budget: FitBudget,
            degradation: DegradationModel | None = None, min_gain: float = 0.0) -> OnboardReport:
    """Judge `expert` from the store's outcomes on `question_ids` (pure but for reading)."""
    if not question_ids:
        raise DataError("no sampled question to judge on")
    new = catalog.get(expert)
    members = [catalog.get(m.expert) for m in universe.members if m.expert != expert]
    sub = Catalog.model_construct(experts=[*members, new])
    names = {outcome_name(e) for e in sub.experts}
    full, _ = fit_outcomes(db=db)
    full = full.select([c for c in full.experts if split_column(c)[0] in names])
    wanted = set(question_ids)
    rows = np.array([i for i, q in enumerate(full.question_ids) if q in wanted], dtype=int)
    matrix = full.rows(rows)
    cs = build_candidates(sub, matrix, budget, degradation)
    predictions = _router_predictions(sub, full, rows)
    pred = routed_predictions(cs, predictions) if budget.objective == "routed" else cs.quality

    def value(members) -> float:  # with pred = quality, the routed score is the oracle's S(U)
        return fit_routed.routed_score(cs.quality, pred, members)

    index = {(c.expert, c.quant.upper()): j for j, c in enumerate(cs.candidates)}
    members_at = [m for m in universe.members if m.expert != expert]
    missing = [f"{m.expert}@{m.quant}" for m in members_at if (m.expert, m.quant.upper()) not in index]
    if missing:
        raise DataError(f"no outcomes of {', '.join(missing)} on the sampled questions")
    u = [index[(m.expert, m.quant.upper())] for m in members_at]
    s_u = value(u)
    memory_u = sum(cs.candidates[j].memory_bytes for j in u)
    options = []
    for j, c in enumerate(cs.candidates):
        if c.expert != expert:
            continue
        fits = budget.fits([cs.candidates[k].memory_bytes for k in [*u, j]],
                           [cs.candidates[k].disk_bytes for k in [*u, j]])
        options.append(QuantOption(quant=c.quant, memory_bytes=c.memory_bytes, fits=fits,
                                   gain=value([*u, j]) - s_u,
                                   quality=c.basis))
    if not options:
        raise DataError(f"{expert} has no outcomes on the sampled questions")
    run_col = index.get((expert, quant_run.upper()))
    own = cs.quality[:, run_col] if run_col is not None else np.zeros(len(cs.question_ids))
    best_u = cs.quality[:, u].max(axis=1) if u else np.zeros(len(own))
    wins = int(((own >= 0.5) & (best_u < 0.5)).sum())
    n = len(cs.question_ids)
    p = wins / n
    stderr = math.sqrt(p * (1 - p) / n) if n else 0.0
    fitting = [o for o in options if o.fits]
    best = max(fitting, key=lambda o: (round(o.gain, 12), -o.memory_bytes), default=None)
    refit = None
    measure = "routed accuracy" if budget.objective == "routed" else "S(U)"
    what = f"{len(u)} member(s), {measure} {100 * s_u:.1f}% on {n} questions"
    if best is not None and best.gain > min_gain:
        join, quant = True, best.quant
        reason = (f"join at {best.quant}: +{100 * best.gain:.1f} points over {what} "
                  f"({wins} question(s) only it gets right, standard error "
                  f"{100 * stderr:.1f} points); memory {format_size(memory_u + best.memory_bytes, binary=False)} "
                  f"of {format_size(budget.capacity, binary=False)}")
    elif best is not None:
        join, quant = False, None
        reason = (f"do not join: adds +{100 * best.gain:.1f} points over {what} at its best "
                  f"quantization that fits ({best.quant}); min gain {100 * min_gain:.1f}")
    else:
        join, quant = False, None
        try:
            report = plan(sub, matrix, budget, degradation=degradation, predictions=predictions)
            chosen = [f"{m.id}@{m.quant}" for m in report.experts]
        except BudgetTooSmall:
            chosen = []
        if any(c.split("@")[0] == expert for c in chosen):
            refit = chosen
            reason = (f"no quantization fits beside the current members; refitting the universe "
                      f"would take it: {', '.join(chosen)} ({measure} {100 * report.score:.1f}% vs "
                      f"{100 * s_u:.1f}%); run `leeroo-local fit --from-store --save`")
        else:
            smallest = min(options, key=lambda o: o.memory_bytes)
            reason = (f"do not join: its smallest quantization ({smallest.quant}, "
                      f"{format_size(smallest.memory_bytes, binary=False)}) does not fit beside "
                      f"the members in {format_size(budget.capacity, binary=False)}, and a refit "
                      f"would not take it")
    return OnboardReport(
        expert=expert, quant_run=quant_run, questions=n,
        universe=[f"{m.expert}@{m.quant}" for m in members_at], objective=budget.objective,
        universe_score=s_u,
        single_score=float(own.mean()) if n else 0.0, unique_wins=wins, gain_stderr=stderr,
        options=options, join=join, quant=quant, refit=refit, budget=budget.rule(),
        reason=reason)


ROUTER_QUESTIONS = 2000  # stored questions besides the sample the router is cross-validated on


def _router_predictions(catalog: Catalog, full, sample_rows: np.ndarray):
    """Cross-validated predictions for the sample, from policies trained on the sample and up
    to ROUTER_QUESTIONS other stored questions (a fixed draw, so the cache is found again): the
    router the universe would have once the new expert's outcomes are in the store."""
    others = np.setdiff1d(np.arange(len(full.question_ids)), sample_rows)
    rng = np.random.default_rng(0)
    extra = rng.permutation(others)[:ROUTER_QUESTIONS] if others.size else others
    rows = np.sort(np.concatenate([sample_rows, extra]).astype(int))
    sub = full.rows(rows)
    return fit_predictions.predictions(sub, prediction_columns(catalog, sub))


def onboard(selfplay, expert: str, questions: int = 30, min_gain: float = 0.0) -> OnboardReport:
    """Run `expert` at its default quantization on sampled stored questions (an onboard round,
    resumable) and judge every quantization it offers (the others scaled as fit does).

    `selfplay` is the SelfPlay of the current universe: its service, store and config (the
    evaluator and seed) are used."""
    service, db, cfg = selfplay.service, selfplay.db, selfplay.config
    catalog, universe = service.catalog, service.universe
    e = catalog.get(expert)
    if expert in universe.ids():
        raise DataError(f"{expert} is a member of the universe already")
    quant = e.quant().type.upper()
    if e.remote and cfg.evaluator == "loglik":
        raise DataError(f"{expert} is remote: use --evaluator extract or judge to onboard it")
    selfplay.import_shipped()
    row = next((r for r in store.rounds(db, "onboard")
                if r["status"] != "done" and r["config"].get("expert") == expert
                and r["config"].get("quant") == quant), None)
    if row is None:
        rng = random.Random(f"{cfg.seed}:onboard:{expert}")
        ids = sample_questions(db, catalog, universe, questions, rng,
                               multiple_choice=cfg.evaluator == "loglik", max_chars=cfg.max_chars)
        if not ids:
            raise DataError("the store has no question that every member of the universe was "
                            "scored on: run `leeroo-local selfplay` first")
        done = store.evaluated_columns(db, ids)
        name = outcome_name(e)
        todo = [q for q in ids if (name, quant) not in {(x, (y or "").upper()) for x, y in done[q]}]
        config = {**cfg.round_config(), "source": "onboard", "expert": expert, "quant": quant,
                  "sample": ids}
        number = store.last_number(db, "onboard") + 1
        qrecs = [{"id": q, "text": ""} for q in ids]  # stored already: INSERT OR IGNORE keeps them
        store.create_round(db, "onboard", number, config, qrecs, [
            store.PlannedTask(q, expert, name, quant, "onboard") for q in todo])
        row = store.get_round(db, "onboard", number)
    selfplay.evaluate_round(row, stage="onboarding")
    store.update_round(db, row["id"], status="done", finished_at=store.now())
    return verdict(catalog, universe, db, expert, quant, row["config"]["sample"],
                   current_budget(universe, service.settings), fit_degradation(db), min_gain)
