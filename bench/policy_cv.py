"""Cross-validated quality of the routing policy against baselines, on questions it never saw.

K-fold (default 5) over the questions of an outcome folder (default: the shipped MMLU-Pro
development data, the 19 `open` experts), with two ways to split: `random` (questions shuffled)
and `source` (the questions of one MMLU-Pro `source`, or of the column --group names, never in
both train and test: the split that says whether the policy generalises to new material). In
each fold every router is fitted on the other folds only, exactly as `policy train` fits it
(vocabulary, idf, L2 strength, blend weights and cluster count, and k with kNN, chosen inside
the training folds). Routers:

- best single: the expert with the best accuracy on the held-out questions (optimistic for it)
- head only (v1): TF-IDF n-grams + logistic head, the policy as shipped before issue 17
- clusters (baseline): the issue's label-free router: character 2-4-gram TF-IDF, 64-dim SVD,
  k-means (10) on the training questions, each cluster's mean training outcome
- policy (v2): the head blended with cluster estimates on dense MiniLM vectors (the recipe)
- v2 + kNN: the same head, with kNN estimates also among the blend's candidates (as shipped
  before kNN was dropped: it routed no better and cost most of the decision's time)
- oracle: the best outcome per question (cheapest expert reaching it)

Columns: accuracy and mean cost at cost weight 0; the best accuracy over the sweep of L at no
more than the best single expert's mean cost, at 5/8 and at 1/2 of it; the cost at which the
router first matches the best single expert; AIQ (RouterBench). Then, per category (the data's
`category`), the policy at L=0 beside always choosing the category's best training expert.

    PYTHONPATH=. python bench/policy_cv.py [--data DIR] [--kind open] [--folds 5]
        [--split random,source] [--group source] [--subsample N] [--json] [--out FILE]
        [--plot FILE.png]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from leeroo_local.store.outcomes import load_matrix  # noqa: E402
from leeroo_local.policy.baselines import char_ngram_counts, cluster_router  # noqa: E402
from leeroo_local.policy.evaluate import evaluate  # noqa: E402
from leeroo_local.policy.recipe import fit_policy_variants  # noqa: E402
from leeroo_local.policy.train import texts_of  # noqa: E402

ROUTERS = ("head_v1", "clusters", "policy_knn", "policy")
NAMES = {"head_v1": "head only (v1)", "clusters": "clusters (base)", "policy_knn": "v2 + kNN",
         "policy": "policy (v2)"}
TARGET_GAIN, TARGET_GAIN_5_8 = 3.5, 2.0


def folds_of(groups: np.ndarray | None, n: int, folds: int, seed: int) -> np.ndarray:
    """Fold of each question: shuffled, or whole groups assigned largest first to the
    lightest fold (balanced sizes, no group in two folds)."""
    if groups is None:
        return np.random.default_rng(seed).permutation(n) % folds
    names, inv = np.unique(groups, return_inverse=True)
    sizes = np.bincount(inv)
    order = np.random.default_rng(seed).permutation(len(names))
    load, fold_of_group = np.zeros(folds), np.zeros(len(names), int)
    for g in sorted(order, key=lambda g: -sizes[g]):
        f = int(np.argmin(load))
        fold_of_group[g] = f
        load[f] += sizes[g]
    return fold_of_group[inv]


def at_budget(report: dict, budget: float) -> float | None:
    ok = [p["accuracy"] for p in report["curve"] if p["mean_cost"] <= budget + 1e-9]
    return max(ok) if ok else None


def cross_validate(matrix, folds: int = 5, seed: int = 0, split: str = "random",
                   group: str = "source", log=print) -> dict:
    rows, texts = texts_of(matrix)
    S = matrix.scores[rows].astype(np.float64)
    costs = matrix.costs()
    recs = [matrix.questions[matrix.question_ids[i]] for i in rows]
    groups = None if split == "random" else np.array([str(r.get(group, "")) for r in recs])
    fold_of = folds_of(groups, len(rows), folds, seed)
    categories = np.array([str(r.get("category", "")) for r in recs])
    counts = char_ngram_counts(texts)
    P = {r: np.zeros_like(S) for r in ROUTERS}
    P["category_best"] = np.zeros_like(S)
    blends = []
    for f in range(folds):
        started = time.perf_counter()
        tr, te = np.flatnonzero(fold_of != f), np.flatnonzero(fold_of == f)
        fitted, with_knn = fit_policy_variants([texts[i] for i in tr], S[tr], costs, seed=seed,
                                               knn=(False, True))
        test_texts = [texts[i] for i in te]
        P["head_v1"][te] = fitted.predict_head(test_texts)
        P["policy"][te] = fitted.predict(test_texts)
        P["policy_knn"][te] = with_knn.predict(test_texts)
        P["clusters"][te] = cluster_router(counts, tr, te, S[tr], seed=seed)
        for c in np.unique(categories[te]):
            mean = np.nanmean(np.where(categories[tr][:, None] == c, S[tr], np.nan), axis=0) \
                if (categories[tr] == c).any() else np.nanmean(S[tr], axis=0)
            P["category_best"][te[categories[te] == c]] = np.nan_to_num(mean)
        blends.append({"l2_x_n": fitted.strength, **fitted.blend.to_dict(),
                       "with_knn": with_knn.blend.to_dict()})
        log(f"{split} fold {f + 1}/{folds}: {len(tr)} train, {len(te)} test, L2 "
            f"{fitted.strength}, blend {fitted.blend.to_dict()}, {time.perf_counter() - started:.0f}s")
    reports = {r: evaluate(P[r], S, costs, matrix.experts) for r in (*ROUTERS, "category_best")}
    return {"questions": len(rows), "experts": matrix.experts, "folds": folds, "seed": seed,
            "split": split, "per_fold": blends, "reports": reports,
            "per_category": per_category(P, S, costs, categories, reports["policy"])}


def per_category(P: dict, S: np.ndarray, costs: np.ndarray, categories: np.ndarray, rep: dict) -> list:
    """Accuracy at L=0 within each category: the category's best training expert, v1, v2."""
    out = []
    rows = np.arange(len(S))
    for c in np.unique(categories):
        m = categories == c
        row = {"category": c, "questions": int(m.sum())}
        for r in ("category_best", "head_v1", "policy"):
            ch = np.argmax(np.where(np.isnan(S[m]), -np.inf, P[r][m]), axis=1)
            row[r] = float(np.nanmean(S[m][rows[: m.sum()], ch]))
        out.append(row)
    return out


def table(result: dict) -> tuple[str, dict]:
    rep = result["reports"]
    base = rep["policy"]["best_single"]
    oracle = rep["policy"]["oracle"]
    b_cost = base["mean_cost"]
    lines = [f"{result['questions']} questions x {len(result['experts'])} experts, "
             f"{result['folds']}-fold CV split by {result['split']}; best single: {base['expert']} "
             f"({100 * base['accuracy']:.2f}%, cost {b_cost:g})", "",
             f"{'router':<18}{'acc@L=0':>9}{'cost':>7}{'@<=best':>9}{'@<=5/8':>8}{'@<=1/2':>8}"
             f"{'cost to match':>15}{'AIQ':>8}"]
    fmt = lambda v: "-" if v is None else f"{100 * v:.2f}"  # noqa: E731
    lines.append(f"{'best single':<18}{100 * base['accuracy']:>9.2f}{b_cost:>7.2f}"
                 f"{100 * base['accuracy']:>9.2f}{'-':>8}{'-':>8}{b_cost:>15.2f}"
                 f"{100 * rep['policy']['aiq_single_experts']:>8.2f}")
    for r in ("category_best", *ROUTERS):
        x = rep[r]
        match = x["cost_to_match_best_single"]
        name = "category (cheats)" if r == "category_best" else NAMES[r]
        lines.append(f"{name:<18}{100 * x['policy']['accuracy']:>9.2f}{x['policy']['mean_cost']:>7.2f}"
                     f"{fmt(at_budget(x, b_cost)):>9}{fmt(at_budget(x, b_cost * 5 / 8)):>8}"
                     f"{fmt(at_budget(x, b_cost / 2)):>8}"
                     f"{'-' if match is None else f'{match:.2f}':>15}{100 * x['aiq']:>8.2f}")
    lines.append(f"{'oracle':<18}{100 * oracle['accuracy']:>9.2f}{oracle['mean_cost']:>7.2f}")
    lines += ["", f"{'category':<18}{'n':>6}{'cat best':>10}{'v1':>8}{'v2':>8}"]
    for row in result["per_category"]:
        lines.append(f"{row['category'][:17]:<18}{row['questions']:>6}{100 * row['category_best']:>10.2f}"
                     f"{100 * row['head_v1']:>8.2f}{100 * row['policy']:>8.2f}")
    pol = rep["policy"]
    gain = 100 * ((at_budget(pol, b_cost) or 0) - base["accuracy"])
    gain58 = 100 * ((at_budget(pol, b_cost * 5 / 8) or 0) - base["accuracy"])
    targets = {
        "gain_at_best_single_cost_points": gain, "gain_target_met": gain >= TARGET_GAIN,
        "gain_at_5_8_cost_points": gain58, "gain_5_8_target_met": gain58 >= TARGET_GAIN_5_8,
        "beats_cluster_baseline_everywhere": all(
            (at_budget(pol, b_cost * q) or 0) >= (at_budget(rep["clusters"], b_cost * q) or 0)
            for q in (1.0, 5 / 8, 0.5)) and pol["aiq"] >= rep["clusters"]["aiq"]
        and pol["policy"]["accuracy"] >= rep["clusters"]["policy"]["accuracy"],
    }
    lines += ["", f"policy (v2) at <= best single's cost: {gain:+.2f} points (target +{TARGET_GAIN}: "
              f"{'met' if targets['gain_target_met'] else 'not met'}); at 5/8 of it: {gain58:+.2f} "
              f"(target +{TARGET_GAIN_5_8}: {'met' if targets['gain_5_8_target_met'] else 'not met'}); "
              f"beats the cluster baseline at every budget: "
              f"{'yes' if targets['beats_cluster_baseline_everywhere'] else 'no'}"]
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
    parser.add_argument("--split", default="random,source", help="random, source or both")
    parser.add_argument("--group", default="source", help="question field the source split uses")
    parser.add_argument("--plot", default=None, help="draw the first split's v2 curve to this PNG")
    args = parser.parse_args()
    matrix = selected_matrix(args)
    if args.subsample:
        pick = np.random.default_rng(args.seed).permutation(len(matrix.question_ids))[: args.subsample]
        matrix = matrix.rows(np.sort(pick))
    log = (lambda *a: print(*a, file=sys.stderr, flush=True)) if args.json else (lambda *a: print(*a, flush=True))
    results = {}
    for split in [s.strip() for s in args.split.split(",") if s.strip()]:
        started = time.perf_counter()
        result = cross_validate(matrix, args.folds, args.seed, split, args.group, log)
        text, result["targets"] = table(result)
        result["seconds"] = time.perf_counter() - started
        results[split] = result
        if not args.json:
            print(text + "\n")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))
    if args.plot and results:
        from leeroo_local.policy.plot import plot_report

        first = next(iter(results.values()))
        report = {**first["reports"]["policy"], "policy_name": "v2 (cross-validated)",
                  "cost_unit": "active parameters, B"}
        plot_report(report, args.plot, f"{first['folds']}-fold CV ({first['split']} split), "
                    f"{first['questions']} questions: policy v2 vs single experts")
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
