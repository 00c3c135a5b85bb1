"""Judge predicted scores against measured outcomes: accuracy and cost of the policy, the best
single expert and the oracle; the accuracy-cost curve over a sweep of the cost weight L; the
cost at which the policy first matches the best single expert; and RouterBench's AIQ.

AIQ (Hu et al., "RouterBench", 2024): the area under the non-decreasing convex hull of a
router's (mean cost, accuracy) points over the experts' cost range, divided by that range. The
hull is what mixing the router's operating points achieves; the same area for the single experts
alone (`aiq_single_experts`) is the no-router baseline.

Only observed cells can be scored: on a question with missing outcomes, every router (and the
oracle) chooses among the experts that were run on it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError
from ..store.outcomes import load_matrix

SWEEP_POINTS = 40


def _observed_choice(P: np.ndarray, observed: np.ndarray, costs: np.ndarray, weight: float) -> np.ndarray:
    utility = np.where(observed, P - weight * costs, -np.inf)
    return np.argmax(utility, axis=1)


def operating_point(P, S, costs, weight) -> tuple[float, float]:
    """(accuracy, mean cost) of choosing argmax P - weight * cost on every question."""
    observed = ~np.isnan(S)
    ch = _observed_choice(P, observed, costs, weight)
    rows = np.arange(len(S))
    return float(np.nanmean(S[rows, ch])), float(costs[ch].mean())


def sweep_weights(costs: np.ndarray, points: int = SWEEP_POINTS) -> np.ndarray:
    """0, then geometric weights up to where the cheapest expert always wins (scores span <= 1)."""
    distinct = np.unique(costs)
    if len(distinct) < 2:
        return np.array([0.0])
    top = 2.0 / float(np.min(np.diff(distinct)))
    return np.concatenate([[0.0], np.geomspace(top * 1e-4, top, points - 1)])


def hull_area(points: list[tuple[float, float]], lo: float, hi: float) -> float:
    """Mean over [lo, hi] of the non-decreasing upper convex hull of (cost, accuracy) points,
    flat beyond the points at either end."""
    if hi <= lo:
        return max(a for _, a in points)
    pts = sorted(set(points))
    hull: list[tuple[float, float]] = []
    for c, a in pts:  # upper hull (monotone chain)
        while len(hull) >= 2 and _cross(hull[-2], hull[-1], (c, a)) >= 0:
            hull.pop()
        hull.append((c, a))
    best = max(a for _, a in hull)  # keep the rising part; flat after the best point
    rising = hull[: next(i for i, (_, a) in enumerate(hull) if a == best) + 1]
    xs = np.array([lo] + [min(max(c, lo), hi) for c, _ in rising] + [hi])
    ys = np.array([rising[0][1]] + [a for _, a in rising] + [best])
    area = float(np.sum(np.diff(xs) * (ys[1:] + ys[:-1]) / 2.0))
    return area / (hi - lo)


def _cross(o, a, b) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def evaluate(P: np.ndarray, S: np.ndarray, costs: np.ndarray, experts: list[str],
             weights: np.ndarray | None = None) -> dict:
    """The eval report of predicted scores P against outcomes S (questions x experts)."""
    costs = np.asarray(costs, dtype=np.float64)
    observed = ~np.isnan(S)
    acc = np.array([np.nanmean(S[:, j]) if observed[:, j].any() else np.nan
                    for j in range(S.shape[1])])
    b = int(np.nanargmax(acc))
    best = {"expert": experts[b], "accuracy": float(acc[b]), "mean_cost": float(costs[b])}
    # Oracle: the best observed outcome per question, from the cheapest expert reaching it.
    top = np.nanmax(np.where(observed, S, np.nan), axis=1)
    reach = observed & (S >= top[:, None] - 1e-12)
    oracle_cost = np.where(reach, costs, np.inf).min(axis=1)
    oracle = {"accuracy": float(top.mean()), "mean_cost": float(oracle_cost.mean())}
    weights = sweep_weights(costs) if weights is None else weights
    curve = []
    for w in weights:
        a, c = operating_point(P, S, costs, w)
        curve.append({"cost_weight": float(w), "accuracy": a, "mean_cost": c})
    a0 = curve[0]
    matches = [p["mean_cost"] for p in curve if p["accuracy"] >= best["accuracy"] - 1e-12]
    lo, hi = float(costs.min()), float(costs.max())
    singles = [(float(costs[j]), float(acc[j])) for j in range(len(costs)) if np.isfinite(acc[j])]

    def best_within(budget: float) -> float | None:
        ok = [p["accuracy"] for p in curve if p["mean_cost"] <= budget + 1e-9]
        return max(ok) if ok else None

    return {
        "questions": int(len(S)),
        "policy": {"accuracy": a0["accuracy"], "mean_cost": a0["mean_cost"], "cost_weight": 0.0},
        "best_single": best,
        "oracle": oracle,
        "singles": {e: {"accuracy": float(acc[j]), "cost": float(costs[j])}
                    for j, e in enumerate(experts)},
        "curve": curve,
        "cost_to_match_best_single": min(matches) if matches else None,
        "accuracy_at_best_single_cost": best_within(best["mean_cost"]),
        "accuracy_at_half_best_single_cost": best_within(best["mean_cost"] / 2),
        "aiq": hull_area([(p["mean_cost"], p["accuracy"]) for p in curve], lo, hi),
        "aiq_single_experts": hull_area(singles, lo, hi),
        "aiq_definition": "RouterBench AIQ: mean accuracy of the non-decreasing convex hull of "
                          "(mean cost, accuracy) over the experts' cost range",
    }


def evaluate_policy(router, data: Path) -> dict:
    """Score every question of the outcome folder `data` with the policy `router` and judge it
    on the data's outcomes (`policy eval`): only the policy's experts that are columns of the
    data, and only questions with a text to route."""
    from .features import prompt_text

    matrix = load_matrix(data)
    labels = router.labels
    cols, outs = [], []
    for j, (expert, column) in enumerate(zip(labels.experts, labels.columns)):
        match = column if column in matrix.experts else expert if expert in matrix.experts else None
        if match is not None:
            cols.append(match)
            outs.append(j)
    if not cols:
        raise DataError(f"{data}: none of the policy's experts ({', '.join(labels.experts)}) "
                        "is a column of this data")
    rows = [i for i, q in enumerate(matrix.question_ids) if q in matrix.questions]
    if not rows:
        raise DataError(f"{data}: no question texts (questions.jsonl.gz) to route")
    texts = [prompt_text(str(matrix.questions[matrix.question_ids[i]]["question"]),
                         matrix.questions[matrix.question_ids[i]].get("options") or None)
             for i in rows]
    P = router.score_many(texts)[:, outs]
    S = matrix.select(cols).scores[rows].astype(np.float64)
    keep = ~np.isnan(S).all(axis=1)
    report = evaluate(P[keep], S[keep], router.costs[outs], [labels.experts[j] for j in outs])
    report["policy_name"] = labels.name
    report["cost_unit"] = labels.cost_unit
    missing = [e for j, e in enumerate(labels.experts) if j not in outs]
    if missing:
        report["experts_not_in_data"] = missing
    return report
