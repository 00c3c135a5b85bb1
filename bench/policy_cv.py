"""Cross-validated quality of the routing policy against baselines, on questions it never saw.

K-fold (default 5) over the questions of an outcome folder (default: the shipped MMLU-Pro
development data, the 19 `open` experts), with two ways to split: `random` (questions shuffled)
and `source` (the questions of one MMLU-Pro `source`, or of the column --group names, never in
both train and test: the split that says whether the policy generalises to new material). In
each fold every router is fitted on the other folds only, exactly as `policy train` fits it
(vocabulary, idf, L2 strength, blend weights and cluster count, and k with kNN, chosen inside
the training folds). Routers:

- best single: the expert with the best accuracy on the held-out questions (optimistic for it)
- task told (category, cheats): each question's `category` given, routed to that category's
  best expert on the training folds (no prompt carries it)
- ridge: TF-IDF word 1-2-grams, least squares per expert (alpha 1), argmax
- head only (v1): TF-IDF n-grams + logistic head, the policy as shipped before issue 17
- clusters (baseline): the issue's label-free router: character 2-4-gram TF-IDF, 64-dim SVD,
  k-means (--clusters, 10) on the training questions, each cluster's mean training outcome
- policy v2: the head blended with cluster estimates on dense MiniLM vectors (issue 17)
- v2 + kNN: the same head, with kNN estimates also among the blend's candidates (as shipped
  before kNN was dropped: it routed no better and cost most of the decision's time)
- policy v3 (the recipe): form tokens among the n-grams, and the kind estimate (kinds.py:
  the recognised category's expert scores) among the blend's parts, learned from the
  training folds' `category`
- oracle: the best outcome per question (cheapest expert reaching it)

`--routers` picks some (v3 and the told-task router are always run). Splits: `random`,
`source` (groups of --group never in two folds), and `task` (the same with the group
`category`: whole tasks held out, the policy never saw the kind of work it is judged on).

Columns: accuracy and mean cost at cost weight 0; the best accuracy over the sweep of L at no
more than the best single expert's mean cost, at 5/8 and at 1/2 of it; the cost at which the
router first matches the best single expert; AIQ (RouterBench). Then, per category (the data's
`category`), the policy at L=0 beside always choosing the category's best training expert.

    PYTHONPATH=. python bench/policy_cv.py [--data DIR] [--kind open] [--folds 5]
        [--split random,source,task] [--group source] [--routers ridge,head_v1,clusters,
        policy_knn,policy] [--clusters 10] [--subsample N] [--json] [--out FILE]
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
from leeroo_local.policy.baselines import char_ngram_counts, cluster_router, fit_ridge  # noqa: E402
from leeroo_local.policy.evaluate import evaluate  # noqa: E402
from leeroo_local.policy.features import FeatureConfig  # noqa: E402
from leeroo_local.policy.recipe import fit_policy, fit_policy_variants, transform  # noqa: E402
from leeroo_local.policy.train import kinds_of, texts_of  # noqa: E402

ROUTERS = ("ridge", "head_v1", "clusters", "policy_knn", "policy", "v3")
NAMES = {"ridge": "ridge (base)", "head_v1": "head only (v1)", "clusters": "clusters (base)",
         "policy_knn": "v2 + kNN", "policy": "policy v2", "v3": "policy v3",
         "category_best": "task told (cheats)"}
V2_CONFIG = FeatureConfig(form=False)  # the issue-17 recipe: words only, no kinds
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
                   group: str = "source", log=print, routers=ROUTERS, clusters: int = 10) -> dict:
    rows, texts = texts_of(matrix)
    S = matrix.scores[rows].astype(np.float64)
    costs = matrix.costs()
    recs = [matrix.questions[matrix.question_ids[i]] for i in rows]
    field = "category" if split == "task" else group
    groups = None if split == "random" else np.array([str(r.get(field, "")) for r in recs])
    fold_of = folds_of(groups, len(rows), folds, seed)
    categories = np.array([str(r.get("category", "")) for r in recs])
    kinds = kinds_of(matrix, rows)
    routers = [r for r in ROUTERS if r in routers or r == "v3"]
    counts = char_ngram_counts(texts) if "clusters" in routers else None
    P = {r: np.zeros_like(S) for r in (*routers, "category_best")}
    blends = []
    for f in range(folds):
        started = time.perf_counter()
        tr, te = np.flatnonzero(fold_of != f), np.flatnonzero(fold_of == f)
        train_texts, test_texts = [texts[i] for i in tr], [texts[i] for i in te]
        v3 = fit_policy(train_texts, S[tr], costs, seed=seed, kinds=[kinds[i] for i in tr])
        P["v3"][te] = v3.predict(test_texts)
        fold = {"v3": {"l2_x_n": v3.strength, **v3.blend.to_dict(),
                       "kinds_l2_x_n": v3.kinds.l2_x_n if v3.kinds else None}}
        if {"head_v1", "policy", "policy_knn"} & set(routers):
            variants = fit_policy_variants(
                train_texts, S[tr], costs, V2_CONFIG, seed=seed,
                knn=(False, True) if "policy_knn" in routers else (False,))
            fitted, with_knn = variants[0], variants[-1]
            for r, model in (("head_v1", fitted), ("policy", fitted), ("policy_knn", with_knn)):
                if r in routers:
                    P[r][te] = model.predict_head(test_texts) if r == "head_v1" else model.predict(test_texts)
            fold["v2"] = {"l2_x_n": fitted.strength, **fitted.blend.to_dict()}
        if "ridge" in routers:
            d = v3.design
            P["ridge"][te] = fit_ridge(d.X, S[tr]).predict(transform(d.featurizer, d.idf, test_texts))
        if "clusters" in routers:
            P["clusters"][te] = cluster_router(counts, tr, te, S[tr], clusters=clusters, seed=seed)
        for c in np.unique(categories[te]):
            mean = np.nanmean(np.where(categories[tr][:, None] == c, S[tr], np.nan), axis=0) \
                if (categories[tr] == c).any() else np.nanmean(S[tr], axis=0)
            P["category_best"][te[categories[te] == c]] = np.nan_to_num(mean)
        blends.append(fold)
        log(f"{split} fold {f + 1}/{folds}: {len(tr)} train, {len(te)} test, v3 {fold['v3']}, "
            f"{time.perf_counter() - started:.0f}s")
    reports = {r: evaluate(P[r], S, costs, matrix.experts) for r in P}
    return {"questions": len(rows), "experts": matrix.experts, "folds": folds, "seed": seed,
            "split": split, "per_fold": blends, "reports": reports, "routers": routers,
            "per_category": per_category(P, S, categories)}


def per_category(P: dict, S: np.ndarray, categories: np.ndarray) -> list:
    """Accuracy at L=0 within each category, per router, beside the category's best expert
    in hindsight (on the held-out questions themselves) and the oracle."""
    out = []
    for c in np.unique(categories):
        m = categories == c
        n = int(m.sum())
        row = {"category": c, "questions": n,
               "best_in_hindsight": float(np.nanmax(np.nanmean(S[m], axis=0))),
               "oracle": float(np.nanmean(np.nanmax(S[m], axis=1)))}
        for r in P:
            ch = np.argmax(np.where(np.isnan(S[m]), -np.inf, P[r][m]), axis=1)
            row[r] = float(np.nanmean(S[m][np.arange(n), ch]))
        out.append(row)
    return out


def table(result: dict) -> tuple[str, dict]:
    rep = result["reports"]
    base = rep["v3"]["best_single"]
    oracle = rep["v3"]["oracle"]
    b_cost = base["mean_cost"]
    lines = [f"{result['questions']} questions x {len(result['experts'])} experts, "
             f"{result['folds']}-fold CV split by {result['split']}; best single: {base['expert']} "
             f"({100 * base['accuracy']:.2f}%, cost {b_cost:g})", "",
             f"{'router':<18}{'acc@L=0':>9}{'cost':>7}{'@<=best':>9}{'@<=5/8':>8}{'@<=1/2':>8}"
             f"{'cost to match':>15}{'AIQ':>8}"]
    fmt = lambda v: "-" if v is None else f"{100 * v:.2f}"  # noqa: E731
    lines.append(f"{'best single':<18}{100 * base['accuracy']:>9.2f}{b_cost:>7.2f}"
                 f"{100 * base['accuracy']:>9.2f}{'-':>8}{'-':>8}{b_cost:>15.2f}"
                 f"{100 * rep['v3']['aiq_single_experts']:>8.2f}")
    for r in ("category_best", *result["routers"]):
        x = rep[r]
        match = x["cost_to_match_best_single"]
        name = NAMES[r]
        lines.append(f"{name:<18}{100 * x['policy']['accuracy']:>9.2f}{x['policy']['mean_cost']:>7.2f}"
                     f"{fmt(at_budget(x, b_cost)):>9}{fmt(at_budget(x, b_cost * 5 / 8)):>8}"
                     f"{fmt(at_budget(x, b_cost / 2)):>8}"
                     f"{'-' if match is None else f'{match:.2f}':>15}{100 * x['aiq']:>8.2f}")
    lines.append(f"{'oracle':<18}{100 * oracle['accuracy']:>9.2f}{oracle['mean_cost']:>7.2f}")
    cols = ["category_best", *result["routers"]]
    short = {"category_best": "told", "ridge": "ridge", "head_v1": "v1", "clusters": "clust",
             "policy_knn": "v2+kNN", "policy": "v2", "v3": "v3"}
    lines += ["", f"{'category':<22}{'n':>6}{'hindsight':>10}" + "".join(f"{short[c]:>8}" for c in cols)
              + f"{'oracle':>8}"]
    for row in result["per_category"]:
        lines.append(f"{row['category'][:21]:<22}{row['questions']:>6}{100 * row['best_in_hindsight']:>10.2f}"
                     + "".join(f"{100 * row[c]:>8.2f}" for c in cols) + f"{100 * row['oracle']:>8.2f}")
    pol = rep["v3"]
    gain = 100 * ((at_budget(pol, b_cost) or 0) - base["accuracy"])
    gain58 = 100 * ((at_budget(pol, b_cost * 5 / 8) or 0) - base["accuracy"])
    targets = {
        "gain_at_best_single_cost_points": gain, "gain_target_met": gain >= TARGET_GAIN,
        "gain_at_5_8_cost_points": gain58, "gain_5_8_target_met": gain58 >= TARGET_GAIN_5_8,
        "beats_cluster_baseline_everywhere": all(
            (at_budget(pol, b_cost * q) or 0) >= (at_budget(rep["clusters"], b_cost * q) or 0)
            for q in (1.0, 5 / 8, 0.5)) and pol["aiq"] >= rep["clusters"]["aiq"]
        and pol["policy"]["accuracy"] >= rep["clusters"]["policy"]["accuracy"]
        if "clusters" in rep else None,
        "matches_task_told_at_best_single_cost":
            (at_budget(pol, b_cost) or 0) >= (at_budget(rep["category_best"], b_cost) or 0),
    }
    told = at_budget(rep["category_best"], b_cost) or 0
    lines += ["", f"policy v3 at <= best single's cost: {100 * (at_budget(pol, b_cost) or 0):.2f} "
              f"vs task told {100 * told:.2f}"]
    lines += [f"policy v3 at <= best single's cost: {gain:+.2f} points (target +{TARGET_GAIN}: "
              f"{'met' if targets['gain_target_met'] else 'not met'}); at 5/8 of it: {gain58:+.2f} "
              f"(target +{TARGET_GAIN_5_8}: {'met' if targets['gain_5_8_target_met'] else 'not met'}); "
              f"beats the cluster baseline at every budget: "
              f"{ {True: 'yes', False: 'no', None: '-'}[targets['beats_cluster_baseline_everywhere']]}"]
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
    parser.add_argument("--split", default="random,source",
                        help="random, source, task (whole categories held out), comma-separated")
    parser.add_argument("--group", default="source", help="question field the source split uses")
    parser.add_argument("--routers", default=",".join(ROUTERS),
                        help="routers beside v3 and the told-task one, comma-separated")
    parser.add_argument("--clusters", type=int, default=10, help="k-means clusters of the baseline")
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
        result = cross_validate(matrix, args.folds, args.seed, split, args.group, log,
                                [r.strip() for r in args.routers.split(",")], args.clusters)
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
        report = {**first["reports"]["v3"], "policy_name": "v3 (cross-validated)",
                  "cost_unit": "active parameters, B"}
        plot_report(report, args.plot, f"{first['folds']}-fold CV ({first['split']} split), "
                    f"{first['questions']} questions: policy v3 vs single experts")
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
