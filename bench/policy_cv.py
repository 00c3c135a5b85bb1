"""Cross-validated quality of the routing policy against the baselines, on questions it never saw.

K-fold (default 5) over the questions of an outcome folder (default: the shipped MMLU-Pro
development data, the 19 `open` experts). In each fold the policy is trained exactly as
`leeroo-local policy train` trains it (vocabulary, idf and L2 strength chosen on the training
folds only); the baselines see the same folds:

- best single: the expert with the best accuracy on the held-out questions (optimistic for it)
- TF-IDF + linear: ridge regression per expert on the same features (scikit-learn's default
  alpha=1), routed with the same cost-aware rule
- kNN: mean outcome of the sqrt(n) most similar training questions (cosine on TF-IDF)
- oracle: the best outcome per question (cheapest expert reaching it)

Columns: accuracy and mean cost at cost weight 0; the best accuracy at no more than the best
single expert's mean cost and at half of it (over the sweep of L); the cost at which the router
first matches the best single expert; AIQ (RouterBench). Targets: policy >= best single + 3.5
points at <= its cost, and >= best single's accuracy at half its cost.

    PYTHONPATH=. python bench/policy_cv.py [--data DIR] [--kind open] [--folds 5]
        [--subsample N] [--json] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from leeroo_local.outcomes import load_matrix  # noqa: E402
from leeroo_local.policy.baselines import fit_ridge, knn_scores  # noqa: E402
from leeroo_local.policy.evaluate import evaluate  # noqa: E402
from leeroo_local.policy.features import FeatureConfig  # noqa: E402
from leeroo_local.policy.train import design, fit_model, texts_of, transform  # noqa: E402

ROUTERS = ("policy", "tfidf_linear", "knn")


def cross_validate(matrix, folds: int = 5, seed: int = 0, log=print) -> dict:
    rows, texts = texts_of(matrix)
    S = matrix.scores[rows].astype(np.float64)
    costs = matrix.costs()
    fold_of = np.random.default_rng(seed).permutation(len(rows)) % folds
    P = {r: np.zeros_like(S) for r in ROUTERS}
    chosen = []
    for f in range(folds):
        started = time.perf_counter()
        tr, te = np.flatnonzero(fold_of != f), np.flatnonzero(fold_of == f)
        d = design([texts[i] for i in tr], FeatureConfig())
        Xte = transform(d.featurizer, d.idf, [texts[i] for i in te])
        model, strength, _ = fit_model(d.X, S[tr], seed)
        chosen.append(strength)
        P["policy"][te] = model.predict(Xte)
        P["tfidf_linear"][te] = fit_ridge(d.X, S[tr]).predict(Xte)
        P["knn"][te] = knn_scores(d.X, S[tr], Xte)
        l2 = "base rates only" if strength is None else f"L2 {strength:g}/n"
        log(f"fold {f + 1}/{folds}: {len(tr)} train, {len(te)} test, {l2}, "
            f"{time.perf_counter() - started:.0f}s")
    reports = {r: evaluate(P[r], S, costs, matrix.experts) for r in ROUTERS}
    return {"questions": len(rows), "experts": matrix.experts, "folds": folds, "seed": seed,
            "l2_x_n_per_fold": chosen, "reports": reports}


def table(result: dict) -> tuple[str, dict]:
    rep = result["reports"]
    base = rep["policy"]["best_single"]
    oracle = rep["policy"]["oracle"]
    lines = [f"{result['questions']} questions x {len(result['experts'])} experts, "
             f"{result['folds']}-fold CV; best single: {base['expert']} "
             f"({100 * base['accuracy']:.2f}%, cost {base['mean_cost']:g})", "",
             f"{'router':<16}{'acc@L=0':>9}{'cost':>7}{'acc@<=best cost':>17}{'acc@<=half':>12}"
             f"{'cost to match':>15}{'AIQ':>8}"]
    fmt = lambda v: "-" if v is None else f"{100 * v:.2f}"  # noqa: E731
    lines.append(f"{'best single':<16}{100 * base['accuracy']:>9.2f}{base['mean_cost']:>7.2f}"
                 f"{100 * base['accuracy']:>17.2f}{'-':>12}{base['mean_cost']:>15.2f}"
                 f"{100 * rep['policy']['aiq_single_experts']:>8.2f}")
    for r in ROUTERS:
        x = rep[r]
        match = x["cost_to_match_best_single"]
        lines.append(f"{r:<16}{100 * x['policy']['accuracy']:>9.2f}{x['policy']['mean_cost']:>7.2f}"
                     f"{fmt(x['accuracy_at_best_single_cost']):>17}"
                     f"{fmt(x['accuracy_at_half_best_single_cost']):>12}"
                     f"{'-' if match is None else f'{match:.2f}':>15}{100 * x['aiq']:>8.2f}")
    lines.append(f"{'oracle':<16}{100 * oracle['accuracy']:>9.2f}{oracle['mean_cost']:>7.2f}")
    pol = rep["policy"]
    gain = 100 * ((pol["accuracy_at_best_single_cost"] or 0) - base["accuracy"])
    half = pol["accuracy_at_half_best_single_cost"]
    targets = {
        "gain_at_best_single_cost_points": gain,
        "gain_target_met": gain >= 3.5,
        "accuracy_at_half_cost": half,
        "half_cost_target_met": half is not None and half >= base["accuracy"],
        "beats_baselines_aiq": all(pol["aiq"] > rep[r]["aiq"] for r in ROUTERS[1:]),
    }
    lines += ["", f"policy at <= best single's cost: {gain:+.2f} points (target +3.5: "
              f"{'met' if targets['gain_target_met'] else 'not met'}); at half its cost: "
              f"{fmt(half)}% (target {100 * base['accuracy']:.2f}%: "
              f"{'met' if targets['half_cost_target_met'] else 'not met'})"]
    return "\n".join(lines), targets


def outcome_arguments(description: str) -> argparse.ArgumentParser:
    """The options every outcome-matrix bench takes (also bench/policy_ceiling.py)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data", default=None, help="outcome folder (default: shipped MMLU-Pro)")
    parser.add_argument("--kind", default="open", help="experts.csv kind to keep ('' for all)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    parser.add_argument("--out", default=None, help="also write the JSON here")
    return parser


def selected_matrix(args: argparse.Namespace):
    """The outcome matrix of --data, restricted to the experts of --kind."""
    matrix = load_matrix(args.data)
    return matrix.select(kind=args.kind) if args.kind else matrix


def main() -> None:
    parser = outcome_arguments(__doc__.splitlines()[0])
    parser.add_argument("--subsample", type=int, default=0, help="use N random questions")
    args = parser.parse_args()
    matrix = selected_matrix(args)
    if args.subsample:
        pick = np.random.default_rng(args.seed).permutation(len(matrix.question_ids))[: args.subsample]
        matrix = matrix.rows(np.sort(pick))
    log = (lambda *a: print(*a, file=sys.stderr)) if args.json else print
    started = time.perf_counter()
    result = cross_validate(matrix, args.folds, args.seed, log)
    text, targets = table(result)
    result["targets"] = targets
    result["seconds"] = time.perf_counter() - started
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2) if args.json else text)


if __name__ == "__main__":
    main()
