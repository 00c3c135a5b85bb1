"""Baseline routers for the cross-validated comparison (bench/policy_cv.py): a TF-IDF + linear
(ridge) model, character n-gram counts, SVD rows, and a router by cluster. Training side only,
numpy alone."""

from __future__ import annotations

import numpy as np

from .lbfgs import minimize
from .model import LinearModel
from .sparse import CSR


def fit_ridge(X: CSR, Y: np.ndarray, alpha: float = 1.0, max_iter: int = 200) -> LinearModel:
    """Least squares per expert with scikit-learn Ridge's default penalty (alpha=1 on the sum
    of squared errors); missing cells skipped; predictions clipped to [0, 1]."""
    V, E = X.n_cols, Y.shape[1]
    mask = ~np.isnan(Y)
    target = np.nan_to_num(Y)
    n = X.n_rows

    def fun(theta):
        W = theta[: V * E].reshape(V, E)
        b = theta[V * E:]
        R = (X.dot(W.astype(np.float32)).astype(np.float64) + b - target) * mask
        loss = (0.5 * (R * R).sum() + 0.5 * alpha * (W * W).sum()) / n
        dW = (X.tdot(R.astype(np.float32)).astype(np.float64) + alpha * W) / n
        return loss, np.concatenate([dW.ravel(), R.sum(axis=0) / n])

    rates = np.where(mask.any(0), np.nansum(Y, 0) / np.maximum(mask.sum(0), 1), 0.5)
    theta, _, _ = minimize(fun, np.concatenate([np.zeros(V * E), rates]), max_iter=max_iter)
    return _Clipped(theta[: V * E].reshape(V, E).astype(np.float32), theta[V * E:])


class _Clipped(LinearModel):
    def predict(self, X: CSR) -> np.ndarray:
        return np.clip(X.dot(self.weights).astype(np.float64) + self.bias, 0.0, 1.0)


def char_ngram_counts(texts, sizes=(2, 3, 4), max_chars: int = 2000, min_df: int = 2,
                      max_features: int = 100_000) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """CSR parts (indptr, indices, counts) of character n-grams of lower-cased texts, over the
    n-grams in at least min_df texts (no labels are used: a vocabulary over all texts is fair)."""
    from collections import Counter

    bags = []
    df: Counter[str] = Counter()
    for text in texts:
        t = " ".join(text[:max_chars].lower().split())
        bag = Counter(t[i:i + n] for n in sizes for i in range(len(t) - n + 1))
        bags.append(bag)
        df.update(bag.keys())
    kept = sorted((g for g, c in df.items() if c >= min_df), key=lambda g: (-df[g], g))[:max_features]
    index = {g: i for i, g in enumerate(kept)}
    indptr, ids, vals = [0], [], []
    for bag in bags:
        row = [(index[g], c) for g, c in bag.items() if g in index]
        ids.extend(i for i, _ in row)
        vals.extend(c for _, c in row)
        indptr.append(len(ids))
    return (np.array(indptr, np.int64), np.array(ids, np.int64), np.array(vals, np.float32), len(kept))


def svd_rows(X: CSR, dims: int = 64, seed: int = 0, power: int = 2) -> np.ndarray:
    """Right singular vectors (n_cols x dims) of X by randomized SVD (Halko et al.)."""
    rng = np.random.default_rng(seed)
    Q = X.tdot(rng.standard_normal((X.n_rows, dims + 10)).astype(np.float32))  # cols x (d+10)
    for _ in range(power):
        Q, _ = np.linalg.qr(X.tdot(X.dot(np.linalg.qr(Q)[0].astype(np.float32))))
    Q, _ = np.linalg.qr(Q)
    B = X.dot(Q.astype(np.float32))  # rows x (d+10): X ~ B Q^T
    _, _, vt = np.linalg.svd(B, full_matrices=False)
    return (Q @ vt.T[:, :dims]).astype(np.float32)


def cluster_router(counts, train: np.ndarray, test: np.ndarray, Y_train: np.ndarray,
                   clusters: int = 10, dims: int = 64, seed: int = 0) -> np.ndarray:
    """The issue's label-free baseline: character 2-4-gram TF-IDF (idf of the training rows),
    a `dims`-dimension SVD, k-means with `clusters` clusters on the training questions; each
    test question gets its cluster's mean training outcome (so at L=0, the cluster's best
    training expert)."""
    from .neighbours import fill_missing, kmeans
    from .sparse import smooth_idf, tfidf_values

    indptr, ids, vals, n_cols = counts

    def part(rows, idf):
        sub = CSR(indptr, ids, vals, n_cols).rows(rows)
        return CSR(sub.indptr, sub.indices, tfidf_values(sub.indptr, sub.indices, sub.data, idf), n_cols)

    ones = CSR(indptr, ids, np.ones_like(vals), n_cols).rows(train)
    df = np.bincount(ones.indices, minlength=n_cols)
    idf = smooth_idf(df, len(train))
    Xtr, Xte = part(train, idf), part(test, idf)
    V = svd_rows(Xtr, dims, seed)
    unit = lambda Z: Z / np.maximum(np.linalg.norm(Z, axis=1, keepdims=True), 1e-9)  # noqa: E731
    Ztr, Zte = unit(Xtr.dot(V)), unit(Xte.dot(V))
    C = kmeans(Ztr.astype(np.float32), clusters, seed)
    Yf = fill_missing(Y_train)
    assign = np.argmax(Ztr @ C.T, axis=1)
    means = np.array([Yf[assign == j].mean(0) if (assign == j).any() else Yf.mean(0)
                      for j in range(len(C))])
    return means[np.argmax(Zte @ C.T, axis=1)]
