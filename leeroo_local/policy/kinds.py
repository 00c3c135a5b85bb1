"""The kind of work a prompt is (its task or category), and what each kind's experts score
(training side, numpy only).

Per-prompt predictions of which expert answers best are noisy (one binary outcome per
expert and prompt), while the evidence for an expert within a kind of work is strong: a few
hundred prompts of one task name its best expert. So the policy also recognises the kind:

    posterior = softmax(x @ Wk + bk)       x: the head's TF-IDF row (words and form tokens)
    kind      = posterior @ K              K: each kind's mean outcome per expert, shrunk

a multinomial logistic classifier over the training questions' labels (the data's
`category`, prefixed by its source when several sources are mixed) and each kind's mean
outcome, shrunk toward the expert's overall mean by a prior worth `PRIOR` questions. The
expected score under the posterior routes a clear prompt to its kind's best expert and an
ambiguous one to the expert that is good across the kinds it may be. Its weight in the blend
with the head is chosen on held-out questions (neighbours.select_blend).

An expert with no outcome in a kind (a source that never ran it) is bridged: the kind's
scores of an expert that both sources ran, shifted by the two experts' gap on the questions
they share (`bridged`). Without a bridge it gets its overall mean. Sources score differently
(F1 on TriviaQA near 0.2, exact match on MMLU-Pro near 0.5), so an overall mean from one
source would rank an expert above every expert of the other on that source's hard kinds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .lbfgs import minimize
from .sparse import CSR

PRIOR = 1.0       # questions' worth of the expert's overall mean in a kind's estimate: a kind of
# a few hundred questions keeps its own ranking (10 flipped close ones toward the overall best)
BRIDGE_MIN = 30   # shared questions two experts need before one's scores stand in for the other's
MIN_KIND = 5      # labels with fewer training questions are merged into "other"
OTHER = "other"
# L2 strengths x n, strong to weak; the path stops at the first held-out log loss that rises.
# Tasks are nearly separable by their words and form: the useful strengths are weak.
L2_PATH = (0.1, 0.03, 0.01, 0.003)


def kind_labels(labels: Sequence[str | None]) -> tuple[list[str], np.ndarray]:
    """Kinds (sorted) and each question's kind index; rare or empty labels are `other`."""
    names = [str(x) if x else OTHER for x in labels]
    values, counts = np.unique(names, return_counts=True)
    rare = {v for v, c in zip(values, counts) if c < MIN_KIND}
    names = [OTHER if n in rare else n for n in names]
    kinds = sorted(set(names))
    index = {k: i for i, k in enumerate(kinds)}
    return kinds, np.array([index[n] for n in names], dtype=np.int64)


def kind_scores(Y: np.ndarray, kind: np.ndarray, n_kinds: int, prior: float = PRIOR) -> np.ndarray:
    """kinds x experts: each kind's mean observed outcome, shrunk toward the expert's overall
    mean. Where an expert has no outcome in a kind (a source that never ran it), its score is
    bridged from the experts that did (`bridged`), else its overall mean."""
    observed = ~np.isnan(Y)
    filled = np.nan_to_num(Y)
    overall = np.where(observed.any(0), filled.sum(0) / np.maximum(observed.sum(0), 1), 0.5)
    sums = np.zeros((n_kinds, Y.shape[1]))
    counts = np.zeros((n_kinds, Y.shape[1]))
    np.add.at(sums, kind, filled)
    np.add.at(counts, kind, observed)
    shrunk = (sums + prior * overall) / np.maximum(counts + prior, 1e-12)
    K = np.where(counts > 0, shrunk, np.nan)
    return np.where(np.isnan(K), bridged(K, Y, overall), K).astype(np.float32)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 0.01, 0.99)
    return np.log(p / (1 - p))


def bridged(K: np.ndarray, Y: np.ndarray, overall: np.ndarray, min_shared: int = BRIDGE_MIN) -> np.ndarray:
    """Scores for the empty cells of K (kinds x experts): an expert's missing kind estimated
    from each expert `a` scored in that kind and on at least `min_shared` questions with it,
    as a's score there shifted by their gap on the shared questions (in logits, so a gap never
    leaves [0, 1]); the mean over such bridges, weighted by shared questions. Sources scored
    differently (F1 beside exact match) are thus compared only through questions both experts
    answered. No bridge: the expert's overall mean, as before."""
    observed = ~np.isnan(Y)
    shared = observed.T.astype(np.float64) @ observed          # experts x experts
    filled = np.nan_to_num(Y)
    total = np.zeros(K.shape)
    weight = np.zeros(K.shape)
    for e in np.flatnonzero(np.isnan(K).any(0)):
        for a in range(Y.shape[1]):
            if a == e or shared[e, a] < min_shared:
                continue
            both = observed[:, e] & observed[:, a]
            gap = _logit(filled[both, e].mean()) - _logit(filled[both, a].mean())
            rows = np.isnan(K[:, e]) & ~np.isnan(K[:, a])
            total[rows, e] += shared[e, a] / (1 + np.exp(-(_logit(K[rows, a]) + gap)))
            weight[rows, e] += shared[e, a]
    return np.where(weight > 0, total / np.maximum(weight, 1e-12), overall[None, :])


@dataclass
class KindModel:
    """softmax(x @ weights + bias) over `kinds`, and each kind's expert scores."""

    kinds: list[str]
    weights: np.ndarray        # vocab x kinds
    bias: np.ndarray           # kinds
    scores: np.ndarray         # kinds x experts
    l2_x_n: float | None = None
    trials: list[dict] = field(default_factory=list)

    def posterior(self, X: CSR) -> np.ndarray:
        return _softmax(X.dot(self.weights).astype(np.float64) + self.bias)

    def predict(self, X: CSR) -> np.ndarray:
        """Expected score of each expert under the posterior over kinds."""
        return self.posterior(X) @ self.scores.astype(np.float64)


def _softmax(Z: np.ndarray) -> np.ndarray:
    Z = Z - Z.max(axis=1, keepdims=True)
    E = np.exp(Z)
    return E / E.sum(axis=1, keepdims=True)


def fit_softmax(X: CSR, kind: np.ndarray, n_kinds: int, l2: float, max_iter: int = 100,
                start: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Minimise mean cross-entropy of the kind labels + l2/2 |W|^2 (bias unpenalised)."""
    V, C, n = X.n_cols, n_kinds, X.n_rows
    T = np.zeros((n, C))
    T[np.arange(n), kind] = 1.0

    def fun(theta: np.ndarray) -> tuple[float, np.ndarray]:
        W = theta[: V * C].reshape(V, C)
        Z = X.dot(W.astype(np.float32)).astype(np.float64) + theta[V * C:]
        Z -= Z.max(axis=1, keepdims=True)
        lse = np.log(np.exp(Z).sum(axis=1, keepdims=True))
        loss = -(T * (Z - lse)).sum() / n + 0.5 * l2 * float((W * W).sum())
        G = (np.exp(Z - lse) - T) / n
        dW = X.tdot(G.astype(np.float32)).astype(np.float64) + l2 * W
        return loss, np.concatenate([dW.ravel(), G.sum(axis=0)])

    if start is None:
        prior = np.bincount(kind, minlength=C) + 1.0
        theta0 = np.concatenate([np.zeros(V * C), np.log(prior / prior.sum())])
    else:
        theta0 = np.concatenate([start[0].astype(np.float64).ravel(), start[1]])
    theta, _, _ = minimize(fun, theta0, max_iter=max_iter, min_iter=0 if start is None else 5)
    return theta[: V * C].reshape(V, C).astype(np.float32), theta[V * C:].copy()


def _log_loss(P: np.ndarray, kind: np.ndarray) -> float:
    return float(-np.log(np.clip(P[np.arange(len(kind)), kind], 1e-9, 1.0)).mean())


def select_kinds(X: CSR, Y: np.ndarray, kind: np.ndarray, kinds: list[str], fit: np.ndarray,
                 val: np.ndarray, path: Sequence[float] = L2_PATH) -> tuple[KindModel, float]:
    """The classifier fitted on the `fit` rows along the L2 path (warm-started, strong to
    weak), kept at the strength with the best held-out log loss on `val`; its kind scores are
    the fit rows' own. Returns it (its predictions on val are honest) and the strength."""
    Xf, Xv = X.rows(fit), X.rows(val)
    C = len(kinds)
    scores = kind_scores(Y[fit], kind[fit], C)
    best, trials, start = None, [], None
    for strength in path:
        start = fit_softmax(Xf, kind[fit], C, strength / len(fit), start=start)
        model = KindModel(kinds, start[0], start[1], scores)
        loss = _log_loss(model.posterior(Xv), kind[val])
        accuracy = float((model.posterior(Xv).argmax(1) == kind[val]).mean())
        trials.append({"l2_x_n": strength, "val_log_loss": loss, "val_accuracy": accuracy})
        if best is not None and loss > best[0]:
            break
        best = (loss, strength, model)
    best[2].trials = trials
    best[2].l2_x_n = best[1]
    return best[2], best[1]


def fit_kinds(X: CSR, Y: np.ndarray, kind: np.ndarray, kinds: list[str],
              strength: float, start: KindModel | None = None) -> KindModel:
    """The classifier and kind scores on all training rows, at the chosen strength."""
    C = len(kinds)
    w = None if start is None else (start.weights, start.bias)
    W, b = fit_softmax(X, kind, C, strength / X.n_rows, start=w)
    return KindModel(kinds, W, b, kind_scores(Y, kind, C), strength)
