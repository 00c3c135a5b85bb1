"""Baseline routers for the cross-validated comparison (bench/policy_cv.py): a kNN router and a
TF-IDF + linear (ridge) model. Training side only, numpy alone."""

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


def knn_scores(X_train: CSR, Y_train: np.ndarray, X_test: CSR, k: int | None = None,
               chunk: int = 256) -> np.ndarray:
    """Mean outcome of the k most similar training questions (cosine of unit TF-IDF rows);
    k defaults to the square root of the training size."""
    k = k or max(5, int(round(np.sqrt(X_train.n_rows))))
    k = min(k, X_train.n_rows)
    out = np.zeros((X_test.n_rows, Y_train.shape[1]))
    observed = ~np.isnan(Y_train)
    filled = np.nan_to_num(Y_train)
    prior = filled.sum(0) / np.maximum(observed.sum(0), 1)
    for start in range(0, X_test.n_rows, chunk):
        idx = np.arange(start, min(start + chunk, X_test.n_rows))
        sub = X_test.rows(idx)
        dense = np.zeros((X_test.n_cols, len(idx)), np.float32)
        dense[sub.indices, np.repeat(np.arange(len(idx)), np.diff(sub.indptr))] = sub.data
        sim = X_train.dot(dense)
        top = np.argpartition(-sim, k - 1, axis=0)[:k]
        sums = filled[top].sum(axis=0)        # chunk x experts
        counts = observed[top].sum(axis=0)
        out[idx] = np.where(counts > 0, sums / np.maximum(counts, 1), prior)
    return out
