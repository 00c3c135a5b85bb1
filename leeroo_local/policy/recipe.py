"""The policy's recipe, fitted in memory: TF-IDF n-grams + logistic head, dense prompt vectors,
and the neighbourhood blend (training side; train.py writes it, bench/policy_cv.py judges it).

    fitted = fit_policy(texts, Y, costs)       # Y: questions x experts, NaN = not run
    fitted.predict(new_texts)                  # the shipped policy's scores
    fitted.predict_head(new_texts)             # the head alone: the v1 policy

With `kinds` (each training question's task or category, when the data has one), the blend
may also take the kind estimate (kinds.py): the recognised kind's expert scores. Everything
chosen from data is chosen on held-out training questions: the L2 strength (model.py) and the
classifier's (kinds.py) on one fifth, then the blend weights and the cluster count (and k, with
kNN) (neighbours.py) on that fifth and `BLEND_FOLDS - 1` more, each predicted by models fitted
without it. Each is refitted on all training questions afterwards.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .embed import Pieces, load_table, piece_idf, pooled, unit_rows
from .features import FeatureConfig, Featurizer, build_vocab
from .kinds import KindModel, fit_kinds, kind_labels, select_kinds
from .model import LinearModel, base_model, fit_logistic, select_l2_holdout
from .neighbours import Blend, HeldOut, Neighbourhoods, select_blend_folds
from .sparse import CSR, smooth_idf, tfidf_values

MIN_FOR_SELECTION = 100   # below this, the L2 strength is the path's middle value, not selected
# Below this, the held-out share (a fifth) is too small to choose blend weights on: on the 400
# starter questions the choice chased noise. The head alone routes.
MIN_FOR_BLEND = 1000
DEFAULT_L2_X_N = 1.0
# Disjoint held-out shares (a fifth each) the blend weights are chosen on: the L2 path's own,
# and more with the head and kind model refitted at their chosen strengths. On the mixed-task
# data one fifth let the weights swing between folds (kind 0.25 to 0.75); three agree.
BLEND_FOLDS = 3
DEFAULT_EMBEDDER = Path(__file__).resolve().parents[1] / "data" / "static_minilm"


@dataclass
class Design:
    """Texts of a matrix turned into TF-IDF rows (also used by the cross-validation bench)."""

    vocab: list[str]
    idf: np.ndarray
    X: CSR
    featurizer: Featurizer


def design(texts: Sequence[str], config: FeatureConfig) -> Design:
    """Vocabulary, idf and TF-IDF matrix of training texts."""
    vocab, df = build_vocab(texts, config)
    featurizer = Featurizer(vocab, config)
    idf = smooth_idf(df, len(texts))
    return Design(vocab, idf, transform(featurizer, idf, texts), featurizer)


def transform(featurizer: Featurizer, idf: np.ndarray, texts: Sequence[str]) -> CSR:
    indptr, indices, counts = featurizer.matrix(texts)
    return CSR(indptr, indices, tfidf_values(indptr, indices, counts, idf), len(featurizer.vocab))


@dataclass
class DenseEncoder:
    """Prompt -> unit dense vector: idf-weighted mean of static subword rows, centred."""

    folder: Path
    pieces: Pieces
    table: np.ndarray     # vocabulary x d, float16
    idf: np.ndarray       # per subword id, from the training prompts
    center: np.ndarray    # mean pooled training vector

    @classmethod
    def fit(cls, folder: str | Path, texts: Sequence[str], max_chars: int) -> DenseEncoder:
        folder = Path(folder)
        pieces = Pieces(folder / "tokenizer.json", max_chars)
        table = load_table(folder)
        ids = pieces.many(texts)
        idf = piece_idf(ids, len(table))
        center = pooled(ids, table, idf).mean(axis=0)
        return cls(folder, pieces, table, idf, center.astype(np.float32))

    def vectors(self, texts: Sequence[str]) -> np.ndarray:
        return unit_rows(pooled(self.pieces.many(texts), self.table, self.idf) - self.center)


@dataclass
class FittedPolicy:
    """Everything a policy folder holds, in memory."""

    config: FeatureConfig
    design: Design
    model: LinearModel
    strength: float | None
    trials: list[dict]
    blend: Blend
    dense: DenseEncoder | None = None
    hoods: Neighbourhoods | None = None
    kinds: KindModel | None = None

    def predict_head(self, texts: Sequence[str]) -> np.ndarray:
        return self.model.predict(transform(self.design.featurizer, self.design.idf, texts))

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        X = transform(self.design.featurizer, self.design.idf, texts)
        head = self.model.predict(X)
        if self.blend.head >= 1.0:
            return head
        kind = self.kinds.predict(X) if self.blend.kind else None
        if self.hoods is None:
            return self.blend.combine(head, None, None, kind)
        return self.hoods.predict(self.dense.vectors(texts), self.blend, head, kind)

    def predict_kinds(self, texts: Sequence[str]) -> np.ndarray | None:
        """Posterior over the kinds (questions x kinds), None without a kind model."""
        if self.kinds is None:
            return None
        return self.kinds.posterior(transform(self.design.featurizer, self.design.idf, texts))


def _more_shares(rest: np.ndarray, size: int, count: int, seed: int) -> list[np.ndarray]:
    """`count` disjoint held-out shares of `size` rows from `rest` (the rows the L2 path fitted
    on), sorted; fewer when `rest` runs out."""
    order = np.random.default_rng(seed + 1).permutation(rest)
    return [np.sort(order[i * size:(i + 1) * size]) for i in range(count)
            if (i + 1) * size <= len(order)]


def fit_head(X: CSR, Y: np.ndarray, seed: int = 0):
    """The logistic head: L2 chosen on held-out questions, then refit on all of them
    (strength None: base rates only). Also returns the held-out selection, or None."""
    if X.n_rows < MIN_FOR_SELECTION:
        return fit_logistic(X, Y, DEFAULT_L2_X_N / X.n_rows), DEFAULT_L2_X_N, [], None
    chosen = select_l2_holdout(X, Y, seed=seed)
    if chosen.strength is None:
        return base_model(Y, X.n_cols), None, chosen.trials, chosen
    return fit_logistic(X, Y, chosen.strength / X.n_rows), chosen.strength, chosen.trials, chosen


def fit_policy(texts: Sequence[str], Y: np.ndarray, costs: np.ndarray,
               config: FeatureConfig | None = None, embedder: str | Path | None = DEFAULT_EMBEDDER,
               seed: int = 0, neighbourhoods: bool = True, knn: bool = False,
               kinds: Sequence[str | None] | None = None) -> FittedPolicy:
    """Fit the whole recipe on training texts and outcomes (embedder None: n-grams only;
    knn: kNN among the blend's candidate parts, see neighbours.py; kinds: each question's
    task or category, for the kind estimate, see kinds.py)."""
    return fit_policy_variants(texts, Y, costs, config, embedder, seed, neighbourhoods, (knn,),
                               kinds)[0]


def fit_policy_variants(texts: Sequence[str], Y: np.ndarray, costs: np.ndarray,
                        config: FeatureConfig | None = None,
                        embedder: str | Path | None = DEFAULT_EMBEDDER, seed: int = 0,
                        neighbourhoods: bool = True, knn: Sequence[bool] = (False,),
                        kinds: Sequence[str | None] | None = None) -> list[FittedPolicy]:
    """One fitted policy per entry of `knn`, all sharing one head, one kind model and one
    dense encoder (the fits are most of the training time; bench/policy_cv.py compares the
    blends)."""
    config = config or FeatureConfig()
    d = design(texts, config)
    model, strength, trials, chosen = fit_head(d.X, Y, seed)
    out = [FittedPolicy(config, d, model, strength, trials, Blend()) for _ in knn]
    if embedder is None or chosen is None or not neighbourhoods or len(texts) < MIN_FOR_BLEND:
        return out
    kind_model, kind_strength, kind_val = None, None, None
    names, kind = kind_labels(kinds) if kinds is not None else ([], None)
    if len(names) >= 2:
        val_model, kind_strength = select_kinds(d.X, Y, kind, names, chosen.fit, chosen.val)
        kind_val = val_model.predict(d.X.rows(chosen.val))
        kind_model = fit_kinds(d.X, Y, kind, names, kind_strength, start=val_model)
        kind_model.trials = val_model.trials
    dense = DenseEncoder.fit(embedder, texts, config.max_chars)
    V = dense.vectors(texts)
    parts = [HeldOut(chosen.model.predict(d.X.rows(chosen.val)), V[chosen.fit], Y[chosen.fit],
                     V[chosen.val], Y[chosen.val], kind_val)]
    for val in _more_shares(chosen.fit, len(chosen.val), BLEND_FOLDS - 1, seed):
        fit = np.setdiff1d(np.arange(len(texts)), val)
        Xf, Xv = d.X.rows(fit), d.X.rows(val)
        head = base_model(Y[fit], d.X.n_cols) if strength is None else \
            fit_logistic(Xf, Y[fit], strength / len(fit))  # cold: every model so far saw `val`
        kv = None
        if kind_model is not None:
            kv = fit_kinds(Xf, Y[fit], kind[fit], names, kind_strength).predict(Xv)
        parts.append(HeldOut(head.predict(Xv), V[fit], Y[fit], V[val], Y[val], kv))
    for fitted, with_knn in zip(out, knn):
        blend = select_blend_folds(parts, np.asarray(costs, np.float64), seed, knn=with_knn)
        fitted.blend = blend
        if blend.kind:
            fitted.kinds = kind_model
        if blend.knn or blend.cluster:
            fitted.dense = dense
            fitted.hoods = Neighbourhoods.fit(V, Y, blend, seed)
    return out
