"""Does the universe `fit` chooses pay off on questions it never saw, routed by the shipped trainer?

For each shipped outcome source (--data: the MMLU-Pro development outcomes, mmlu-pro, and the
mixed-task development outcomes, llmrouter; both by default), and for each of --splits random
splits of it, a share (--holdout, 30%) of the questions is held out. `fit` runs on the rest exactly as
`leeroo-local fit --vram B` does (its cross-validated predictions computed on those questions
only), once with the routed objective (the default) and once with `--objective oracle`. Then
the shipped trainer (leeroo_local.policy.train: features, L2 chosen on held-out questions)
trains one policy on the fit questions, and each universe routes the held-out questions with
it: its accuracy there, after the quantization factors, is the column. The best single expert
that fits (chosen on the fit questions) is the baseline.

Also per budget: the routed greedy against exhaustive search over a small pool (the five
experts with the best accuracy that fit, all their quantizations), on the fit questions.

Targets at 24 GB (routed universe over the best single expert that fits, held out, after the
quantization factors): +1.5 points on MMLU-Pro, +5 on the mixed-task data (issue #28). Base
models join as `fit` lets them: only with --base.

    PYTHONPATH=. python bench/fit_holdout.py [--data mmlu-pro llmrouter] [--splits 1]
        [--holdout 0.3] [--jobs 1] [--base] [--json] [--out FILE]
    --write-shipped also rebuilds each --data's leeroo_local/data/<folder>/fit_predictions.npz
    (after a change to the trainer, raise fit_predictions.RECIPE; or to the catalog's columns).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from leeroo_local.fit import predictions as fit_predictions  # noqa: E402
from leeroo_local.fit import routed as fit_routed  # noqa: E402
from leeroo_local.catalog import load_catalog  # noqa: E402
from leeroo_local.fit.outcome_sources import SHIPPED_SOURCES, shipped_folder  # noqa: E402
from leeroo_local.fit.plan import (FitBudget, build_candidates, plan,  # noqa: E402
                                      prediction_columns, routed_predictions)
from leeroo_local.store.outcomes import load_matrix  # noqa: E402
from leeroo_local.units import parse_size  # noqa: E402

BUDGETS = ("8GB", "16GB", "24GB", "48GB")
# routed universe over the best single that fits, at 24 GB, per source
TARGET_24 = {"mmlu-pro": 0.015, "llmrouter": 0.05}
POOL = 5


def holdout_task(matrix, fit_rows, hold_rows, columns) -> fit_predictions.FoldTask:
    """The shipped trainer on all the fit questions, predicting the held-out ones: one more
    fold task (every shipped question has a text)."""
    from leeroo_local.policy.train import kinds_of, texts_of

    sub = matrix.select(columns)
    _, texts = texts_of(sub)
    kinds = kinds_of(sub, range(len(sub.question_ids)))
    return fit_predictions.FoldTask([texts[i] for i in fit_rows],
                                    sub.scores[fit_rows].astype(np.float64),
                                    [texts[i] for i in hold_rows], hold_rows, fit_predictions.SEED,
                                    [kinds[i] for i in fit_rows],
                                    fit_predictions.column_costs(sub))


def small_pool(report_cs, pred, budget: FitBudget) -> dict:
    """Greedy vs exhaustive over the POOL best experts that fit (all their quantizations)."""
    cs, q = report_cs, report_cs.quality
    memory = cs.memory()
    fits = memory <= budget.capacity
    best = {}
    for j in np.flatnonzero(fits):
        e = cs.candidates[j].expert
        best[e] = max(best.get(e, 0.0), float(q[:, j].mean()))
    experts = sorted(best, key=lambda e: -best[e])[:POOL]
    idx = np.array([j for j, c in enumerate(cs.candidates) if c.expert in experts and fits[j]])
    groups = cs.groups()[idx]
    started = time.perf_counter()
    greedy = fit_routed.fit(q[:, idx], pred[:, idx], memory[idx], groups, budget.capacity,
                            min_share=0.0)
    greedy_s = time.perf_counter() - started
    started = time.perf_counter()
    _, optimum = fit_routed.exhaustive(q[:, idx], pred[:, idx], memory[idx], groups,
                                       budget.capacity)
    return {"experts": experts, "candidates": int(idx.size), "greedy": greedy.score,
            "exhaustive": optimum, "greedy_seconds": greedy_s,
            "exhaustive_seconds": time.perf_counter() - started}


def split_rows(n: int, split: int, holdout: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed + split).permutation(n)
    return np.sort(perm[int(n * holdout):]), np.sort(perm[: int(n * holdout)])


def train_all(matrix, catalog, splits: int, holdout: float, seed: int, jobs: int, ship: Path | None):
    """Every policy training the splits need (cross-validation folds of the fit questions, and
    one policy on all of them), in one pool; the folds' predictions go to the cache as `fit`
    would write them. Returns per split (predictions, held-out predictions, seconds)."""
    columns = prediction_columns(catalog, matrix)
    plans, tasks = [], []
    for split in range(splits):
        fit_rows, hold_rows = split_rows(len(matrix.question_ids), split, holdout, seed)
        fit_matrix = matrix.rows(fit_rows)
        key = fit_predictions.data_key(fit_matrix, columns)
        cached = fit_predictions.load(fit_predictions.cache_dir() / f"{key}.npz", key)
        if cached:
            cached.source = "cache"
        folds = (None, None, None) if cached else fit_predictions.fold_tasks(fit_matrix, columns)
        held = fit_predictions.cache_dir() / f"held-out-{key}.npy"
        plans.append((fit_matrix, cached, folds, len(tasks), held))
        tasks += (folds[0] or []) + ([] if held.exists() else
                                     [holdout_task(matrix, fit_rows, hold_rows, columns)])
    if ship:
        ship_folds = fit_predictions.fold_tasks(matrix, columns)
        ship_at = len(tasks)
        tasks += ship_folds[0]
    started = time.perf_counter()
    if jobs > 1:
        with ProcessPoolExecutor(jobs) as pool:
            results = list(pool.map(fit_predictions.run_fold, tasks))
    else:
        results = [fit_predictions.run_fold(t) for t in tasks]
    seconds = time.perf_counter() - started
    out = []
    for fit_matrix, cached, (ftasks, fold, base), at, held in plans:
        if cached is None:
            n = len(ftasks)
            cached = fit_predictions.assemble(fit_matrix, columns, ftasks, results[at:at + n],
                                              fold, base, seconds=seconds)
            fit_predictions.save(cached, fit_predictions.cache_dir() / f"{cached.key}.npz")
            at += n
        if not held.exists():  # the held-out policy's predictions, kept for reruns
            np.save(held, results[at].astype(np.float32))
        out.append((cached, np.load(held), seconds))
    if ship:
        pred = fit_predictions.assemble(matrix, columns, ship_folds[0], results[ship_at:],
                                        ship_folds[1], ship_folds[2], seconds=seconds)
        fit_predictions.save(pred, ship / fit_predictions.SHIPPED_FILE)
    return out, columns


def one_split(matrix, catalog, split: int, holdout: float, seed: int, preds, P_hold,
              columns, base: bool = False) -> dict:
    fit_rows, hold_rows = split_rows(len(matrix.question_ids), split, holdout, seed)
    fit_matrix = matrix.rows(fit_rows)
    col = {c: j for j, c in enumerate(columns)}
    rows = {}
    for label in BUDGETS:
        budget = FitBudget(vram_bytes=parse_size(label), include_base=base)
        full = build_candidates(catalog, matrix, budget)  # quality on every question
        assert full.question_ids == matrix.question_ids
        index = {(c.expert, c.quant): j for j, c in enumerate(full.candidates)}
        Q_hold = full.quality[hold_rows]
        pred_hold = np.stack([P_hold[:, col[c.column]] * c.factor for c in full.candidates], 1)
        row = {}
        for objective in ("routed", "oracle"):
            started = time.perf_counter()
            report = plan(catalog, fit_matrix, budget.model_copy(update={"objective": objective}),
                          predictions=preds)
            members = [index[(m.id, m.quant)] for m in report.experts]
            values = fit_routed.routed_values(Q_hold, pred_hold, members)
            row[objective] = {"universe": [f"{m.id}@{m.quant}" for m in report.experts],
                              "shares": [round(m.share, 4) for m in report.experts],
                              "held_out_shares": [round(x, 4) for x in
                                                  fit_routed.shares(pred_hold, members)],
                              "memory_gb": report.total_memory_bytes / 1e9,
                              "fit_routed": report.routed_score, "fit_oracle": report.oracle_score,
                              "held_out": float(values.mean()), "seconds": time.perf_counter() - started,
                              "dropped": report.dropped, "recommend": report.recommend,
                              "noise": report.noise, "_values": values}
        single = index[(report.best_single.id, report.best_single.quant)]
        lead = row["routed"].pop("_values") - Q_hold[:, single]
        row["oracle"].pop("_values")
        row["single"] = {"expert": f"{report.best_single.id}@{report.best_single.quant}",
                         "fit": report.best_single.score, "held_out": float(Q_hold[:, single].mean())}
        row["routed_lead"] = float(lead.mean())
        row["routed_lead_se"] = float(lead.std(ddof=1) / np.sqrt(len(lead)))
        fit_cs = build_candidates(catalog, fit_matrix, budget)
        row["pool"] = small_pool(fit_cs, routed_predictions(fit_cs, preds), budget)
        rows[label] = row
    return {"split": split, "held_out_questions": int(hold_rows.size),
            "fit_questions": int(fit_rows.size), "cv_source": preds.source, "budgets": rows}


def summarise(splits: list[dict]) -> dict:
    out = {}
    for label in BUDGETS:
        rows = [s["budgets"][label] for s in splits]
        mean = lambda f: float(np.mean([f(r) for r in rows]))  # noqa: E731
        out[label] = {
            "oracle_chosen": mean(lambda r: r["oracle"]["held_out"]),
            "routed_chosen": mean(lambda r: r["routed"]["held_out"]),
            "single": mean(lambda r: r["single"]["held_out"]),
            "routed_fit_estimate": mean(lambda r: r["routed"]["fit_routed"]),
            "oracle_s_of_routed": mean(lambda r: r["routed"]["fit_oracle"]),
            "routed_lead": mean(lambda r: r["routed_lead"]),
            "routed_lead_se": mean(lambda r: r["routed_lead_se"]),
            "k_routed": mean(lambda r: len(r["routed"]["universe"])),
            "k_oracle": mean(lambda r: len(r["oracle"]["universe"])),
            "pool_ratio": mean(lambda r: r["pool"]["greedy"] / r["pool"]["exhaustive"]),
            "routed_at_least_oracle": all(r["routed"]["held_out"] >= r["oracle"]["held_out"] - 1e-12
                                          for r in rows),
        }
    return out


def run_data(name: str, args, catalog) -> dict:
    """The bench on one shipped source: its splits, summary and 24 GB target."""
    started = time.perf_counter()
    matrix = load_matrix(shipped_folder(name))
    if args.subsample:
        pick = np.random.default_rng(args.seed).permutation(len(matrix.question_ids))
        matrix = matrix.rows(np.sort(pick[: args.subsample]))
    trained, columns = train_all(matrix, catalog, args.splits, args.holdout, args.seed, args.jobs,
                                 shipped_folder(name) if args.write_shipped else None)
    splits = [one_split(matrix, catalog, s, args.holdout, args.seed, preds, P_hold, columns,
                        args.base)
              for s, (preds, P_hold, _) in enumerate(trained)]
    summary = summarise(splits)
    r24 = summary["24GB"]
    return {"data": name, "questions": len(matrix.question_ids),
            "seconds": round(time.perf_counter() - started, 1),
            "training_seconds": round(trained[0][2], 1), "summary": summary, "per_split": splits,
            "routed_at_least_oracle_everywhere": all(r["routed_at_least_oracle"]
                                                     for r in summary.values()),
            "target_24gb": TARGET_24[name],
            "target_24gb_met": r24["routed_chosen"] - r24["single"] >= TARGET_24[name]}


def print_table(res: dict, splits: int, holdout: float) -> None:
    summary, last = res["summary"], res["per_split"][-1]
    print(f"{res['data']} ({res['questions']} questions)")
    print(f"{'--vram':<7} {'oracle-chosen':>14} {'routed-chosen':>14} {'single':>7} "
          f"{'lead':>6} {'se':>5} {'fit est.':>8} {'S(U)':>6} {'k r/o':>6} {'greedy/exh.':>11}")
    for label, r in summary.items():
        print(f"{label:<7} {100 * r['oracle_chosen']:>14.2f} {100 * r['routed_chosen']:>14.2f} "
              f"{100 * r['single']:>7.2f} {100 * r['routed_lead']:>+6.2f} "
              f"{100 * r['routed_lead_se']:>5.2f} {100 * r['routed_fit_estimate']:>8.2f} "
              f"{100 * r['oracle_s_of_routed']:>6.2f} {r['k_routed']:>3.1f}/{r['k_oracle']:<2.1f} "
              f"{r['pool_ratio']:>11.4f}")
    for label in BUDGETS:
        b = last["budgets"][label]
        print(f"{label}: routed {', '.join(b['routed']['universe'])}; oracle "
              f"{', '.join(b['oracle']['universe'])}; single {b['single']['expert']}")
    print(f"{splits} split(s), {int(100 * holdout)}% held out; accuracy in % on the "
          f"held-out questions after quantization factors; routed >= oracle everywhere: "
          f"{res['routed_at_least_oracle_everywhere']}; 24 GB target "
          f"(+{100 * res['target_24gb']:g} over single): "
          f"{'met' if res['target_24gb_met'] else 'not met'}; {res['seconds']} s")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", nargs="+", choices=list(SHIPPED_SOURCES),
                    default=list(SHIPPED_SOURCES), help="shipped outcome sources to bench")
    ap.add_argument("--splits", type=int, default=1)
    ap.add_argument("--holdout", type=float, default=0.3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=1, help="policy trainings run in parallel")
    ap.add_argument("--base", action="store_true", help="let base models join (fit --base)")
    ap.add_argument("--subsample", type=int, default=0, help="N random questions (smoke test)")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ap.add_argument("--out", type=Path, help="also write the JSON here")
    ap.add_argument("--write-shipped", action="store_true",
                    help="also recompute the shipped data's cross-validated predictions")
    args = ap.parse_args(argv)
    started = time.perf_counter()
    catalog = load_catalog()
    by_data = {name: run_data(name, args, catalog) for name in args.data}
    result = {"bench": "fit_holdout", "splits": args.splits, "holdout": args.holdout,
              "jobs": args.jobs, "base": args.base,
              "seconds": round(time.perf_counter() - started, 1), "by_data": by_data}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    for res in by_data.values():
        print_table(res, args.splits, args.holdout)
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
