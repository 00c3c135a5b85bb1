"""Why the policy falls below the best single expert on kinds of work it never saw, and what
a gate toward the best single expert buys (issue 28; the numbers in
leeroo_local/policies/README.md, v3.1).

Per fold: the kind estimate alone (posterior over the training kinds @ each kind's expert
scores), and two gates that fall back to the best single expert (the training folds' mean
outcome) when a prompt looks unlike the training kinds: on the cosine to the nearest kind
centroid (TF-IDF) and on the classifier's top posterior. Each gate's threshold is chosen on a
held-out fifth of the training fold, half of it as seen (its own kind known) and half as
novel (its own kind's centroid, or its posterior column, taken away): leave-one-kind-out
without refitting. Prints accuracy at cost weight 0, at the best single expert's cost, AIQ.

    PYTHONPATH=. python bench/policy_novelty.py random|task [--out FILE.json]
"""
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
from leeroo_local.store.outcomes import load_matrix  # noqa: E402
from leeroo_local.policy.evaluate import evaluate  # noqa: E402
from leeroo_local.policy.features import FeatureConfig  # noqa: E402
from leeroo_local.policy.kinds import fit_kinds, kind_labels, select_kinds  # noqa: E402
from leeroo_local.policy.recipe import design, transform  # noqa: E402
from leeroo_local.policy.train import kinds_of, texts_of  # noqa: E402
from policy_cv import at_budget, folds_of  # noqa: E402

GATE_STEPS = 41  # thresholds tried: quantiles of the calibration signals


def centroids(X, kind: np.ndarray, n_kinds: int) -> np.ndarray:
    """vocab x kinds: each kind's summed unit TF-IDF rows, normalised (cosine centroids)."""
    D = np.zeros((X.n_cols, n_kinds), np.float32)
    for c in range(n_kinds):
        idx = np.flatnonzero(kind == c)
        if len(idx):
            D[:, c] = X.rows(idx).tdot(np.ones((len(idx), 1), np.float32))[:, 0]
    return D / np.maximum(np.linalg.norm(D, axis=0, keepdims=True), 1e-9)


def acc0(P: np.ndarray, Y: np.ndarray) -> float:
    """Mean outcome of the argmax expert (cost weight 0)."""
    pick = np.argmax(np.where(np.isnan(Y), -np.inf, P), axis=1)
    return float(np.nanmean(Y[np.arange(len(Y)), pick]))


def gated(signal: np.ndarray, threshold: float, estimate: np.ndarray, fallback: np.ndarray):
    keep = (signal >= threshold)[:, None]
    return np.where(keep, estimate, fallback)


def threshold(seen: tuple, novel: tuple, fallback: np.ndarray, Y: np.ndarray) -> float:
    """The gate threshold with the best mean accuracy over the seen and the novel halves;
    each half is (signal, estimate)."""
    grid = np.unique(np.quantile(np.r_[seen[0], novel[0]], np.linspace(0, 1, GATE_STEPS)))
    scores = [0.5 * acc0(gated(*seen[:1], t, seen[1], fallback), Y)
              + 0.5 * acc0(gated(*novel[:1], t, novel[1], fallback), Y) for t in grid]
    return float(grid[int(np.argmax(scores))])


def main() -> None:
    split = sys.argv[1] if len(sys.argv) > 1 else "task"
    m = load_matrix(ROOT / "leeroo_local" / "data" / "llmrouter_dev").select(kind="open")
    rows, texts = texts_of(m)
    S = m.scores[rows].astype(np.float64)
    costs = m.costs()
    cats = np.array([str(m.questions[m.question_ids[i]].get("category", "")) for i in rows])
    kinds = kinds_of(m, rows)
    fold_of = folds_of(None if split == "random" else cats, len(rows), 5, 0)
    P = {k: np.zeros_like(S) for k in ("kind", "gate_sim", "gate_conf", "overall")}
    folds = []
    for f in range(5):
        started = time.time()
        tr, te = np.flatnonzero(fold_of != f), np.flatnonzero(fold_of == f)
        d = design([texts[i] for i in tr], FeatureConfig())
        names, kind = kind_labels([kinds[i] for i in tr])
        perm = np.random.default_rng(0).permutation(len(tr))
        val, fit = np.sort(perm[:len(tr) // 5]), np.sort(perm[len(tr) // 5:])
        vm, strength = select_kinds(d.X, S[tr], kind, names, fit, val)
        km = fit_kinds(d.X, S[tr], kind, names, strength, start=vm)
        overall = np.nanmean(S[tr], axis=0)
        # calibration on the held-out fifth: each prompt as seen, and as novel (its own kind's
        # centroid and posterior column taken away: leave-one-kind-out without refitting)
        Xv, kv, Yv = d.X.rows(val), kind[val], S[tr][val]
        post, K = vm.posterior(Xv), vm.scores.astype(np.float64)
        sims = Xv.dot(centroids(d.X.rows(fit), kind[fit], len(names)))
        away = sims.copy()
        away[np.arange(len(kv)), kv] = -1
        post_away = post.copy()
        post_away[np.arange(len(kv)), kv] = 0
        post_away /= post_away.sum(1, keepdims=True)
        fallback = np.nanmean(S[tr][fit], axis=0)
        t_sim = threshold((sims.max(1), post @ K), (away.max(1), post_away @ K), fallback, Yv)
        t_conf = threshold((post.max(1), post @ K), (post_away.max(1), post_away @ K), fallback, Yv)
        Xt = transform(d.featurizer, d.idf, [texts[i] for i in te])
        pt = km.posterior(Xt)
        estimate = pt @ km.scores.astype(np.float64)
        sim_t = Xt.dot(centroids(d.X, kind, len(names))).max(1)
        P["kind"][te], P["overall"][te] = estimate, overall
        P["gate_sim"][te] = gated(sim_t, t_sim, estimate, overall)
        P["gate_conf"][te] = gated(pt.max(1), t_conf, estimate, overall)
        folds.append({"fold": f, "threshold_sim": t_sim, "threshold_conf": t_conf,
                      "kept_sim": float((sim_t >= t_sim).mean()),
                      "kept_conf": float((pt.max(1) >= t_conf).mean()),
                      "seconds": time.time() - started})
        print(folds[-1], flush=True)
    out = {"split": split, "folds": folds, "routers": {}}
    for k, v in P.items():
        r = evaluate(v, S, costs, m.experts)
        best = at_budget(r, r["best_single"]["mean_cost"]) or 0
        out["routers"][k] = {"acc_l0": acc0(v, S), "at_best_single_cost": best, "aiq": r["aiq"]}
        print(f"{split} {k:10s} acc@L=0 {100 * acc0(v, S):.2f}  @<=best {100 * best:.2f}  "
              f"AIQ {100 * r['aiq']:.2f}", flush=True)
    if "--out" in sys.argv:
        Path(sys.argv[sys.argv.index("--out") + 1]).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
