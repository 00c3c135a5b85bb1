"""Does more training data move the routing policy? Its cross-validated gain at growing
training sizes, on the same held-out questions.

policy_cv.py says where the policy stands; policy_ceiling.py what routers with subject labels
reach. This script answers the remaining question before a target is called out of reach: would
more questions of the same kind help (self-play makes more)? For each of the first --curve-folds
of a random K-fold split, the policy (the shipped recipe: `fit_policy`, everything chosen
inside the training questions) is fitted on a random fraction of the fold's training questions
and judged on the whole test fold, so every fraction is judged on the same questions.

Columns as in policy_cv.py: points over the best single expert at no more than its mean cost
and at 5/8 of it, and AIQ; for the policy and its head alone (v1).

    PYTHONPATH=. python bench/policy_learning_curve.py [--data DIR] [--kind open] [--folds 5]
        [--curve-folds 3] [--fractions 0.25,0.5,0.75,1] [--json] [--out FILE]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from leeroo_local.policy.evaluate import evaluate  # noqa: E402
from leeroo_local.policy.recipe import fit_policy  # noqa: E402
from leeroo_local.policy.train import texts_of  # noqa: E402
from policy_cv import at_budget, folds_of, outcome_arguments, selected_matrix  # noqa: E402


def gains(P: np.ndarray, S: np.ndarray, costs: np.ndarray, experts: list[str]) -> dict:
    """Points over the best single expert at its cost and at 5/8 of it, and AIQ (percent)."""
    report = evaluate(P, S, costs, experts)
    best = report["best_single"]
    at = lambda budget: at_budget(report, budget)  # noqa: E731
    return {"gain": 100 * ((at(best["mean_cost"]) or 0.0) - best["accuracy"]),
            "gain_5_8": 100 * ((at(best["mean_cost"] * 5 / 8) or 0.0) - best["accuracy"]),
            "aiq": 100 * report["aiq"]}


def learning_curve(matrix, fractions: list[float], folds: int = 5, curve_folds: int = 3,
                   seed: int = 0, log=print) -> dict:
    rows, texts = texts_of(matrix)
    S = matrix.scores[rows].astype(np.float64)
    costs = matrix.costs()
    fold_of = folds_of(None, len(rows), folds, seed)
    tested = np.flatnonzero(fold_of < curve_folds)
    out = []
    for fraction in fractions:
        P = {"policy": np.zeros_like(S), "head_v1": np.zeros_like(S)}
        sizes = []
        for f in range(curve_folds):
            started = time.perf_counter()
            tr, te = np.flatnonzero(fold_of != f), np.flatnonzero(fold_of == f)
            keep = np.random.default_rng(seed + f).permutation(len(tr))[:round(fraction * len(tr))]
            tr = np.sort(tr[keep])
            fitted = fit_policy([texts[i] for i in tr], S[tr], costs, seed=seed)
            test_texts = [texts[i] for i in te]
            P["policy"][te] = fitted.predict(test_texts)
            P["head_v1"][te] = fitted.predict_head(test_texts)
            sizes.append(len(tr))
            log(f"fraction {fraction:g}, fold {f + 1}/{curve_folds}: {len(tr)} train, "
                f"{len(te)} test, blend {fitted.blend.to_dict()}, "
                f"{time.perf_counter() - started:.0f}s")
        row = {"fraction": fraction, "train_questions": int(np.mean(sizes))}
        for name, Q in P.items():
            row[name] = gains(Q[tested], S[tested], costs, matrix.experts)
        out.append(row)
    return {"questions": len(rows), "tested": len(tested), "folds": folds,
            "curve_folds": curve_folds, "seed": seed, "rows": out}


def table(result: dict) -> str:
    lines = [f"{result['tested']} held-out questions ({result['curve_folds']} of "
             f"{result['folds']} folds), points over the best single expert", "",
             f"{'train questions':>16}{'v2 @cost':>10}{'v2 @5/8':>9}{'v2 AIQ':>8}"
             f"{'v1 @cost':>10}{'v1 @5/8':>9}{'v1 AIQ':>8}"]
    for r in result["rows"]:
        v2, v1 = r["policy"], r["head_v1"]
        lines.append(f"{r['train_questions']:>16}{v2['gain']:>+10.2f}{v2['gain_5_8']:>+9.2f}"
                     f"{v2['aiq']:>8.2f}{v1['gain']:>+10.2f}{v1['gain_5_8']:>+9.2f}{v1['aiq']:>8.2f}")
    return "\n".join(lines)


def main() -> None:
    parser = outcome_arguments(__doc__.splitlines()[0])
    parser.add_argument("--curve-folds", type=int, default=3, help="test folds to judge on")
    parser.add_argument("--fractions", default="0.25,0.5,0.75,1",
                        help="fractions of each fold's training questions")
    args = parser.parse_args()
    fractions = [float(x) for x in args.fractions.split(",")]
    result = learning_curve(selected_matrix(args), fractions, args.folds, args.curve_folds,
                            args.seed, log=lambda m: print(m, file=sys.stderr, flush=True))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2) if args.json else table(result))


if __name__ == "__main__":
    main()
