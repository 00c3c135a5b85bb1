"""Neighbourhood estimates on dense prompt vectors, and their blend with the parametric head
(training side, numpy only).

Where the evidence about one question is weak, a router should fall back to what worked for
questions like it, never below it. Two estimates make "questions like it":

- kNN: the mean outcome of the k training questions with the most similar vectors;
- clusters: k-means (cosine) on the training vectors; each cluster's mean outcome, shrunk
  toward the overall mean by a prior worth `PRIOR` questions (a small cluster says less).

The policy's score is a convex blend  a_head * head + a_knn * knn + a_cluster * cluster, with the
weights, k and the number of clusters chosen on held-out training questions (`select_blend`):
each part is kept only when the held-out questions support it.

kNN is not a candidate by default. Cross-validated on all 9,607 shared questions (bench/
policy_cv.py, 5 folds, the same heads), the blend with kNN among its parts did -0.59 points at
the best single expert's cost on random folds and +0.29 on source folds (AIQ -0.04, +0.13): a
tie, for a decision 2.8 times slower (a similarity against every training question and a TopK).
`select_blend(..., knn=True)` brings it back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

PRIOR = 10.0  # questions' worth of the overall mean in each cluster's estimate
WEIGHT_STEP = 0.25
CLUSTER_STEP = 0.125  # head vs cluster weight, when kNN is not a candidate


def fill_missing(Y: np.ndarray) -> np.ndarray:
    """Outcomes with missing cells set to the expert's mean (0.5 when never observed)."""
    observed = ~np.isnan(Y)
    rates = np.where(observed.any(0), np.nansum(Y, 0) / np.maximum(observed.sum(0), 1), 0.5)
    return np.where(observed, Y, rates).astype(np.float32)


def kmeans(X: np.ndarray, k: int, seed: int = 0, iterations: int = 25) -> np.ndarray:
    """Spherical k-means (unit rows, cosine): k unit centroids, k-means++ seeding."""
    rng = np.random.default_rng(seed)
    k = max(1, min(k, len(X)))
    centres = [X[rng.integers(len(X))]]
    dist = np.full(len(X), np.inf)
    for _ in range(1, k):
        dist = np.minimum(dist, 1.0 - X @ centres[-1])
        p = np.maximum(dist, 0)
        centres.append(X[rng.choice(len(X), p=p / p.sum())] if p.sum() > 0 else X[rng.integers(len(X))])
    C = np.array(centres, np.float32)
    for _ in range(iterations):
        assign = np.argmax(X @ C.T, axis=1)
        for j in range(k):
            members = X[assign == j]
            if len(members):
                c = members.sum(0)
                C[j] = c / max(float(np.linalg.norm(c)), 1e-6)
    return C


def cluster_means(X: np.ndarray, Y: np.ndarray, C: np.ndarray) -> np.ndarray:
    """Each cluster's mean outcome (filled Y), shrunk toward the overall mean."""
    assign = np.argmax(X @ C.T, axis=1)
    overall = Y.mean(0)
    out = np.empty((len(C), Y.shape[1]), np.float32)
    for j in range(len(C)):
        members = Y[assign == j]
        out[j] = (members.sum(0) + PRIOR * overall) / (len(members) + PRIOR)
    return out


def knn_mean(X_mem: np.ndarray, Y_mem: np.ndarray, Xq: np.ndarray, k: int,
             chunk: int = 512) -> np.ndarray:
    """Mean filled outcome of the k most similar memory rows (cosine of unit rows)."""
    k = max(1, min(k, len(X_mem)))
    out = np.empty((len(Xq), Y_mem.shape[1]), np.float32)
    for s in range(0, len(Xq), chunk):
        sim = Xq[s:s + chunk] @ X_mem.T
        top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        out[s:s + chunk] = Y_mem[top].mean(axis=1)
    return out


@dataclass
class Blend:
    """Weights of head, kNN, cluster and kind estimates (summing to 1), k and the cluster
    count (the kind part: kinds.py)."""

    head: float = 1.0
    knn: float = 0.0
    cluster: float = 0.0
    k: int = 0
    clusters: int = 0
    kind: float = 0.0
    trials: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"head": self.head, "knn": self.knn, "cluster": self.cluster, "k": self.k,
                "clusters": self.clusters, "kind": self.kind}

    def combine(self, head: np.ndarray, knn: np.ndarray | None, cluster: np.ndarray | None,
                kind: np.ndarray | None = None) -> np.ndarray:
        out = self.head * head
        if self.knn:
            out = out + self.knn * knn
        if self.cluster:
            out = out + self.cluster * cluster
        if self.kind:
            out = out + self.kind * kind
        return out


def neighbourhood_sizes(n: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Candidate k and cluster counts for n training questions (scale with n, not constants)."""
    root = np.sqrt(max(n, 1))
    ks = tuple(sorted({max(5, int(round(f * root))) for f in (1.0, 2.0, 4.0)}))
    clusters = tuple(sorted({max(2, int(round(root / d))) for d in (8.0, 4.0)}))
    return ks, clusters


def simplex(step: float = WEIGHT_STEP) -> list[tuple[float, float, float]]:
    n = int(round(1 / step))
    return [(i * step, j * step, (n - i - j) * step) for i in range(n + 1) for j in range(n + 1 - i)]


def candidate_weights(knn: bool, kinds: bool = False) -> list[tuple[float, ...]]:
    """(head, kNN, cluster, kind) weights to try: the head/kNN/cluster simplex in quarters with
    kNN, else head, cluster and (with kinds) kind in eighths."""
    if knn:
        return [(h, k, c, 0.0) for h, k, c in simplex()]
    n = int(round(1 / CLUSTER_STEP))
    if not kinds:
        return [(i * CLUSTER_STEP, 0.0, (n - i) * CLUSTER_STEP, 0.0) for i in range(n + 1)]
    return [(h, 0.0, c, g) for h, c, g in simplex(CLUSTER_STEP)]


@dataclass
class HeldOut:
    """One held-out share of the training questions: what the blend is chosen on. The head's
    and the kind estimate's predictions on it come from models fitted without it; the
    neighbourhoods are fitted here on X_fit."""

    head_val: np.ndarray
    X_fit: np.ndarray
    Y_fit: np.ndarray
    X_val: np.ndarray
    Y_val: np.ndarray
    kind_val: np.ndarray | None = None


def select_blend(head_val: np.ndarray, X_fit: np.ndarray, Y_fit: np.ndarray, X_val: np.ndarray,
                 Y_val: np.ndarray, costs: np.ndarray, seed: int = 0, criterion=None,
                 knn: bool = False, kind_val: np.ndarray | None = None) -> Blend:
    """The blend with the best held-out score on one held-out share (select_blend_folds)."""
    return select_blend_folds([HeldOut(head_val, X_fit, Y_fit, X_val, Y_val, kind_val)], costs,
                              seed, criterion, knn)


def select_blend_folds(parts: list[HeldOut], costs: np.ndarray, seed: int = 0, criterion=None,
                       knn: bool = False) -> Blend:
    """The blend with the best held-out score over all `parts` together (criterion(P, Y_val,
    costs), higher is better; default: AIQ over the cost sweep, the accuracy-cost area the
    router is judged by); kNN among the parts only when asked (see the module's docstring);
    the kind estimate (kinds.py) among them when every part has its held-out predictions.
    Several disjoint parts steady the choice: on one fifth of the mixed-task data (710
    prompts) the chosen weights swung from fold to fold."""
    from .evaluate import evaluate

    if criterion is None:
        def criterion(P, Y, c):
            return evaluate(P, Y, c, [str(i) for i in range(Y.shape[1])])["aiq"]

    ks, cluster_counts = neighbourhood_sizes(len(parts[0].X_fit))
    near, clu = [], []
    for part in parts:
        Yf = fill_missing(part.Y_fit)
        near.append({k: knn_mean(part.X_fit, Yf, part.X_val, k) for k in ks} if knn else {})
        clu.append({})
        for c in cluster_counts:
            C = kmeans(part.X_fit, c, seed)
            clu[-1][c] = cluster_means(part.X_fit, Yf, C)[np.argmax(part.X_val @ C.T, axis=1)]
    Y_val = np.concatenate([p.Y_val for p in parts])
    with_kinds = all(p.kind_val is not None for p in parts)
    best, trials = None, []
    for a_h, a_k, a_c, a_g in candidate_weights(knn, with_kinds):
        for k in (ks if a_k else (0,)):
            for c in (cluster_counts if a_c else (0,)):
                b = Blend(a_h, a_k, a_c, k, c, a_g)
                P = np.concatenate([b.combine(p.head_val, n.get(k), q.get(c), p.kind_val)
                                    for p, n, q in zip(parts, near, clu)])
                score = float(criterion(P, Y_val, costs))
                trials.append({**b.to_dict(), "val_score": score})
                if best is None or score > best[0] + 1e-12:
                    best = (score, b)
    blend = best[1]
    blend.trials = trials
    return blend


@dataclass
class Neighbourhoods:
    """What the graph needs for the kNN and cluster parts, fitted on all training questions."""

    memory: np.ndarray      # n x d unit vectors (kNN)
    outcomes: np.ndarray    # n x experts, missing cells filled
    centroids: np.ndarray   # clusters x d
    cluster_scores: np.ndarray  # clusters x experts

    @classmethod
    def fit(cls, X: np.ndarray, Y: np.ndarray, blend: Blend, seed: int = 0) -> Neighbourhoods:
        Yf = fill_missing(Y)
        if blend.cluster:
            C = kmeans(X, blend.clusters, seed)
            M = cluster_means(X, Yf, C)
        else:
            C, M = np.zeros((0, X.shape[1]), np.float32), np.zeros((0, Y.shape[1]), np.float32)
        if not blend.knn:
            X, Yf = np.zeros((0, X.shape[1]), np.float32), np.zeros((0, Y.shape[1]), np.float32)
        return cls(X.astype(np.float32), Yf, C, M)

    def predict(self, Xq: np.ndarray, blend: Blend, head: np.ndarray,
                kind: np.ndarray | None = None) -> np.ndarray:
        knn = knn_mean(self.memory, self.outcomes, Xq, blend.k) if blend.knn else None
        clu = self.cluster_scores[np.argmax(Xq @ self.centroids.T, axis=1)] if blend.cluster else None
        return blend.combine(head, knn, clu, kind)
