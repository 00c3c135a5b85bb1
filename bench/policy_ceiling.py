"""How far routing on this data can go: the budget arithmetic of the half-cost target, and
routers that know each question's subject or source, which no prompt-only router knows.

bench/policy_cv.py measures the policy; this script measures the room it has. Two parts:

- Budget arithmetic. At a mean cost of C, with the cheapest expert at cost c0 and every other
  expert at c1 or more, at most (C - c0) / (c1 - c0) of the questions can leave the cheapest
  expert; to reach accuracy T from the cheapest expert's a0, those questions must gain
  (T - a0) / that share on average (in points of accuracy, net of what the cheapest would have
  got right).
- Metadata routers. Each question's predicted scores are the mean outcomes of the experts on the
  questions of its group (MMLU-Pro `category`, `source`, or category x source origin), shrunk
  toward the overall rate with the weight of 5 questions, and routed by the same sweep of the
  cost weight as the policy. "cv" learns the groups' rates on the other folds (a real router
  with perfect subject labels); "in-sample" learns them on the very questions it is judged on,
  an optimistic bound that includes fitting noise.

    PYTHONPATH=. python bench/policy_ceiling.py [--data DIR] [--kind open] [--folds 5]
        [--json] [--out FILE]
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from leeroo_local.policy.evaluate import evaluate  # noqa: E402
from policy_cv import outcome_arguments, selected_matrix  # noqa: E402  (bench/ is on sys.path)

PRIOR_QUESTIONS = 5.0
GROUPINGS = {
    "category": lambda q: str(q.get("category", "")),
    "source": lambda q: str(q.get("source", "")),
    "category x origin": lambda q: f"{q.get('category', '')}/"
                                   f"{re.sub(r'-.*', '', str(q.get('source', '')))}",
}


def budget_arithmetic(S: np.ndarray, costs: np.ndarray, budget: float, target: float) -> dict:
    """The share of questions that may leave the cheapest expert at `budget`, and the mean
    gain they would need for accuracy `target`."""
    acc = np.nanmean(S, axis=0)
    cheapest = int(np.argmin(costs))
    c0, a0 = float(costs[cheapest]), float(acc[cheapest])
    c1 = float(np.min(costs[costs > c0])) if np.any(costs > c0) else c0
    share = 1.0 if c1 == c0 else min(1.0, max(0.0, (budget - c0) / (c1 - c0)))
    need = (target - a0) / share if share > 0 else float("inf")
    return {"budget": budget, "target": target, "cheapest_cost": c0, "cheapest_accuracy": a0,
            "next_cost": c1, "max_share_leaving_cheapest": share,
            "needed_gain_per_moved_question": need}


def oracle_at_budget(S: np.ndarray, costs: np.ndarray, budget: float) -> float:
    """Accuracy of an oracle that starts from the cheapest expert everywhere and moves the
    questions with the best gain per extra cost first until the mean cost reaches `budget`
    (greedy, so a lower bound on the exact optimum, and exact for 0/1 outcomes)."""
    cheapest = int(np.argmin(costs))
    base = np.nan_to_num(S[:, cheapest])
    gain = np.nan_to_num(S, nan=-1.0) - base[:, None]
    extra = costs - costs[cheapest]
    ratio = np.where((gain > 0) & (extra > 0), gain / np.where(extra > 0, extra, 1.0), 0.0)
    pick = np.argmax(ratio, axis=1)
    rows = np.arange(len(S))
    order = np.argsort(-ratio[rows, pick], kind="stable")
    spend = np.cumsum(extra[pick[order]] * (ratio[rows, pick][order] > 0))
    moved = order[spend <= (budget - costs[cheapest]) * len(S) + 1e-9]
    moved = moved[ratio[moved, pick[moved]] > 0]
    return float((base.sum() + gain[moved, pick[moved]].sum()) / len(S))


def grouped_scores(S: np.ndarray, groups: np.ndarray, fold_of: np.ndarray, in_sample: bool) -> np.ndarray:
    """Per-group mean outcomes, shrunk toward the overall rate, for every question."""
    P = np.zeros_like(S)
    for f in np.unique(fold_of):
        test = np.flatnonzero(fold_of == f)
        train = test if in_sample else np.flatnonzero(fold_of != f)
        overall = np.nanmean(S[train], axis=0)
        for g in np.unique(groups[test]):
            members = train[groups[train] == g]
            sums = np.nansum(S[members], axis=0)
            counts = (~np.isnan(S[members])).sum(axis=0)
            P[test[groups[test] == g]] = (sums + PRIOR_QUESTIONS * overall) / (counts + PRIOR_QUESTIONS)
    return P


def measure(matrix, folds: int = 5, seed: int = 0) -> dict:
    S = matrix.scores.astype(np.float64)
    costs = matrix.costs()
    records = [matrix.questions.get(q, {}) for q in matrix.question_ids]
    fold_of = np.random.default_rng(seed).permutation(len(S)) % folds
    base = evaluate(np.broadcast_to(np.nanmean(S, 0), S.shape).copy(), S, costs, matrix.experts)
    best = base["best_single"]
    out = {"questions": len(S), "experts": len(matrix.experts), "folds": folds, "best_single": best,
           "oracle_at_half_cost": oracle_at_budget(S, costs, best["mean_cost"] / 2),
           "budget": budget_arithmetic(S, costs, best["mean_cost"] / 2, best["accuracy"]),
           "routers": []}
    for name, key in GROUPINGS.items():
        groups = np.array([key(r) for r in records])
        if len(np.unique(groups)) < 2:
            continue
        for in_sample in (False, True):
            rep = evaluate(grouped_scores(S, groups, fold_of, in_sample), S, costs, matrix.experts)
            out["routers"].append({
                "grouping": name, "groups": int(len(np.unique(groups))),
                "fit": "in-sample" if in_sample else "cv",
                "accuracy": rep["policy"]["accuracy"], "mean_cost": rep["policy"]["mean_cost"],
                "accuracy_at_best_single_cost": rep["accuracy_at_best_single_cost"],
                "accuracy_at_half_best_single_cost": rep["accuracy_at_half_best_single_cost"],
                "aiq": rep["aiq"]})
    return out


def table(result: dict) -> str:
    best, b = result["best_single"], result["budget"]
    pct = lambda v: "-" if v is None else f"{100 * v:.2f}"  # noqa: E731
    lines = [f"{result['questions']} questions x {result['experts']} experts; best single "
             f"{best['expert']} {pct(best['accuracy'])}% at cost {best['mean_cost']:g}", "",
             f"half-cost target: {pct(b['target'])}% at mean cost <= {b['budget']:g}. The cheapest "
             f"expert (cost {b['cheapest_cost']:g}) gets {pct(b['cheapest_accuracy'])}%; the next "
             f"costs {b['next_cost']:g}, so at most {pct(b['max_share_leaving_cheapest'])}% of "
             f"questions can go elsewhere, and they must gain {pct(b['needed_gain_per_moved_question'])}"
             f" points each on average (oracle at that cost: {pct(result['oracle_at_half_cost'])}%).",
             "", f"{'router':<22}{'groups':>7}{'fit':>11}{'acc@L=0':>9}{'cost':>7}"
             f"{'acc@<=best cost':>17}{'acc@<=half':>12}{'AIQ':>8}"]
    for r in result["routers"]:
        lines.append(f"{r['grouping']:<22}{r['groups']:>7}{r['fit']:>11}{pct(r['accuracy']):>9}"
                     f"{r['mean_cost']:>7.2f}{pct(r['accuracy_at_best_single_cost']):>17}"
                     f"{pct(r['accuracy_at_half_best_single_cost']):>12}{pct(r['aiq']):>8}")
    return "\n".join(lines)


def main() -> None:
    args = outcome_arguments(__doc__.splitlines()[0]).parse_args()
    matrix = selected_matrix(args)
    result = measure(matrix, args.folds, args.seed)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2) if args.json else table(result))


if __name__ == "__main__":
    main()
