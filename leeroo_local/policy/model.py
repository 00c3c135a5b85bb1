"""The policy's model: multi-output logistic regression on TF-IDF n-grams (numpy only).

One logistic output per expert, all trained together on the observed cells of the outcome
matrix (missing cells are skipped, fractional scores are soft targets of the same cross-entropy).
The L2 strength is not a constant tuned to one data file: `select_l2` picks it on a held-out
share of the training questions by log loss, along a path of strengths relative to the number
of questions, so it adapts to a few hundred or many thousand questions alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .lbfgs import minimize
from .sparse import CSR

# L2 strengths as lambda x n_questions: the prior's weight in "questions' worth" of evidence.
# The path runs from strong to weak and stops once held-out log loss gets worse.
L2_PATH = (3.0, 1.0, 0.3, 0.1, 0.03, 0.01)


@dataclass
class LinearModel:
    """scores = sigmoid(X @ weights + bias); weights is vocab x experts."""

    weights: np.ndarray
    bias: np.ndarray

    def predict(self, X: CSR) -> np.ndarray:
        return _sigmoid(X.dot(self.weights).astype(np.float64) + self.bias)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-3, 1 - 1e-3)
    return np.log(p / (1 - p))


def base_rates(Y: np.ndarray) -> np.ndarray:
    """Each expert's mean observed score (0.5 for an expert with no observed cell)."""
    observed = ~np.isnan(Y)
    sums = np.nansum(Y, axis=0)
    counts = observed.sum(axis=0)
    return np.where(counts > 0, sums / np.maximum(counts, 1), 0.5)


def fit_logistic(X: CSR, Y: np.ndarray, l2: float, max_iter: int = 200,
                 start: LinearModel | None = None) -> LinearModel:
    """Minimise mean cross-entropy over observed cells + l2/2 |W|^2 (bias unpenalised)."""
    V, E = X.n_cols, Y.shape[1]
    mask = ~np.isnan(Y)
    target = np.nan_to_num(Y).astype(np.float64)
    n_obs = max(int(mask.sum()), 1)

    def fun(theta: np.ndarray) -> tuple[float, np.ndarray]:
        W = theta[: V * E].reshape(V, E)
        b = theta[V * E:]
        Z = X.dot(W.astype(np.float32)).astype(np.float64) + b
        loss = (np.logaddexp(0.0, Z) - target * Z)[mask].sum() / n_obs + 0.5 * l2 * float((W * W).sum())
        G = (_sigmoid(Z) - target) * mask / n_obs
        dW = X.tdot(G.astype(np.float32)).astype(np.float64) + l2 * W
        return loss, np.concatenate([dW.ravel(), G.sum(axis=0)])

    if start is None:
        theta0 = np.concatenate([np.zeros(V * E), _logit(base_rates(Y))])
    else:
        theta0 = np.concatenate([start.weights.astype(np.float64).ravel(), start.bias])
    theta, _, _ = minimize(fun, theta0, max_iter=max_iter)
    return LinearModel(theta[: V * E].reshape(V, E).astype(np.float32), theta[V * E:].copy())


def log_loss(P: np.ndarray, Y: np.ndarray) -> float:
    """Mean cross-entropy over observed cells (fractional targets allowed)."""
    mask = ~np.isnan(Y)
    if not mask.any():
        return float("nan")
    P = np.clip(P[mask], 1e-6, 1 - 1e-6)
    y = Y[mask]
    return float(-(y * np.log(P) + (1 - y) * np.log(1 - P)).mean())


def select_l2(X: CSR, Y: np.ndarray, holdout: float = 0.2, seed: int = 0,
              path: tuple[float, ...] = L2_PATH, max_iter: int = 200) -> tuple[float, list[dict]]:
    """The L2 strength (from `path`, in units of 1/n_questions) with the best held-out log
    loss; fits run from strong to weak, each warm-started from the previous one, and stop at
    the first that does worse than the one before."""
    n = X.n_rows
    order = np.random.default_rng(seed).permutation(n)
    n_val = max(1, int(round(n * holdout)))
    val, fit = np.sort(order[:n_val]), np.sort(order[n_val:])
    Xf, Xv = X.rows(fit), X.rows(val)
    trials, model = [], None
    for strength in path:
        l2 = strength / len(fit)
        model = fit_logistic(Xf, Y[fit], l2, max_iter=max_iter, start=model)
        trials.append({"l2_x_n": strength, "val_log_loss": log_loss(model.predict(Xv), Y[val])})
        if len(trials) > 1 and trials[-1]["val_log_loss"] > trials[-2]["val_log_loss"]:
            break
    best = min(trials, key=lambda t: t["val_log_loss"])
    return best["l2_x_n"], trials
