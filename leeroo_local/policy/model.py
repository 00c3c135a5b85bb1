"""The policy's model: multi-output logistic regression on TF-IDF n-grams (numpy only).

One logistic output per expert, all trained together on the observed cells of the outcome
matrix (missing cells are skipped, fractional scores are soft targets of the same cross-entropy).
The L2 strength is not a constant tuned to one data file: `select_l2` picks it on a held-out
share of the training questions, along a path of strengths relative to the number of questions,
so it adapts to a few hundred or many thousand questions alike.

The selection criterion is the held-out pairwise loss (`pair_loss`): how well the predictions
order two experts on a question where their outcomes differ. Routing depends only on that
order (plus costs); plain log loss also rewards predicting a question's difficulty, which every
expert shares, and on MMLU-Pro picks a 3x weaker L2 that routes 1.3 points worse at the best
single expert's cost (5-fold CV, bench/policy_cv.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .lbfgs import minimize
from .sparse import CSR

# L2 strengths as lambda x n_questions: the prior's weight in "questions' worth" of evidence.
# The path runs from strong to weak and stops once held-out log loss gets worse.
L2_PATH = (30.0, 10.0, 3.0, 1.0, 0.3, 0.1, 0.03, 0.01)


@dataclass
class LinearModel:
    """scores = sigmoid(X @ weights + bias); weights is vocab x experts."""

    weights: np.ndarray
    bias: np.ndarray

    def predict(self, X: CSR) -> np.ndarray:
        return _sigmoid(X.dot(self.weights).astype(np.float64) + self.bias)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _logit(p: np.ndarray, eps: float = 1e-3) -> np.ndarray:
    p = np.clip(p, eps, 1 - eps)
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
    theta, _, _ = minimize(fun, theta0, max_iter=max_iter, min_iter=0 if start is None else 10)
    return LinearModel(theta[: V * E].reshape(V, E).astype(np.float32), theta[V * E:].copy())


def log_loss(P: np.ndarray, Y: np.ndarray) -> float:
    """Mean cross-entropy over observed cells (fractional targets allowed)."""
    mask = ~np.isnan(Y)
    if not mask.any():
        return float("nan")
    P = np.clip(P[mask], 1e-6, 1 - 1e-6)
    y = Y[mask]
    return float(-(y * np.log(P) + (1 - y) * np.log(1 - P)).mean())


def pair_loss(P: np.ndarray, Y: np.ndarray) -> float:
    """Held-out pairwise logistic loss: for each question and each pair of experts whose
    outcomes differ, -log sigmoid(+-(logit p_j - logit p_k)) toward the better one, weighted by
    how much they differ (fractional scores). Lower: the experts are better ordered."""
    Z = _logit(P, 1e-6)
    j, k = np.triu_indices(Y.shape[1], 1)
    diff = Y[:, j] - Y[:, k]
    weight = np.nan_to_num(np.abs(diff))
    if weight.sum() == 0:
        return float("nan")
    margin = np.where(np.nan_to_num(diff) > 0, 1.0, -1.0) * (Z[:, j] - Z[:, k])
    return float((weight * np.logaddexp(0.0, -margin)).sum() / weight.sum())


def base_model(Y: np.ndarray, n_features: int) -> LinearModel:
    """No text at all: every prompt gets each expert's base rate (i.e. the best single expert)."""
    return LinearModel(np.zeros((n_features, Y.shape[1]), np.float32), _logit(base_rates(Y)))


@dataclass
class L2Selection:
    """The chosen strength, the path's trials, and the chosen model as fitted on the `fit`
    share only: its predictions on `val` are honest held-out scores (neighbours.py blends
    with them)."""

    strength: float | None
    trials: list[dict]
    model: LinearModel
    fit: np.ndarray
    val: np.ndarray


def select_l2(X: CSR, Y: np.ndarray, holdout: float = 0.2, seed: int = 0,
              path: tuple[float, ...] = L2_PATH, max_iter: int = 200
              ) -> tuple[float | None, list[dict]]:
    """The L2 strength (from `path`, in units of 1/n_questions) with the best held-out pairwise
    loss, and the trials (see select_l2_holdout)."""
    chosen = select_l2_holdout(X, Y, holdout, seed, path, max_iter)
    return chosen.strength, chosen.trials


def select_l2_holdout(X: CSR, Y: np.ndarray, holdout: float = 0.2, seed: int = 0,
                      path: tuple[float, ...] = L2_PATH, max_iter: int = 200) -> L2Selection:
    """Fits run from strong to weak, each warm-started from the previous one, and stop at
    the first that does worse than the one before. The first candidate is no text at all (base
    rates, strength None): a policy whose text features do not order the experts better on
    held-out questions routes like the best single expert. With a single expert there are no
    pairs, and held-out log loss decides."""
    n = X.n_rows
    order = np.random.default_rng(seed).permutation(n)
    n_val = max(1, int(round(n * holdout)))
    val, fit = np.sort(order[:n_val]), np.sort(order[n_val:])
    Xf, Xv = X.rows(fit), X.rows(val)

    def trial(strength, model) -> dict:
        pv = model.predict(Xv)
        return {"l2_x_n": strength, "val_log_loss": log_loss(pv, Y[val]),
                "val_pair_loss": pair_loss(pv, Y[val])}

    models = [base_model(Y[fit], X.n_cols)]
    trials = [trial(None, models[0])]
    key = "val_pair_loss" if np.isfinite(trials[0]["val_pair_loss"]) else "val_log_loss"
    model = None
    for strength in path:
        model = fit_logistic(Xf, Y[fit], strength / len(fit), max_iter=max_iter, start=model)
        models.append(model)
        trials.append(trial(strength, model))
        if trials[-1][key] > trials[-2][key]:
            break
    best = min(range(len(trials)), key=lambda i: trials[i][key])
    return L2Selection(trials[best]["l2_x_n"], trials, models[best], fit, val)
