"""Cross-validated policy predictions for every question and every candidate expert, cached.

The routed fit objective (fit_routed) needs, for each question, the score the shipped trainer's
policy would predict for each candidate, from a policy that never saw that question. K folds
over the questions; in each, one policy is trained with `policy train`'s recipe (policy.recipe:
vocabulary, idf, L2 strength, kind model and blend chosen on the training folds only) on all
candidate columns at once, so the greedy can then try any universe without training again. Its
head and kind estimate are per expert, so an expert's predictions barely depend on which other
experts are trained beside it (only the blend's weights are shared).

Minutes on the shipped data, so the matrix is cached under $LEEROO_HOME/cache/fit, keyed by a
hash of the data (question ids, columns, outcomes, texts) and of the recipe (folds, seed, feature
configuration, RECIPE). The shipped MMLU-Pro and mixed-task data carry their matrices for the
catalog's columns (leeroo_local/data/{mmlu_pro_dev,llmrouter_dev}/fit_predictions.npz), so `fit`
on them is interactive on a fresh install; `python bench/fit_holdout.py --write-shipped [--data
llmrouter]` rebuilds one after a trainer or catalog change (raise RECIPE for a trainer change).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import paths
from ..diskerrors import removed_on_failure
from ..errors import DataError
from ..store.outcomes import OutcomeMatrix, default_data_dir

RECIPE = 2      # raise when the trainer changes what it predicts (2: the shipped policy's recipe)
FOLDS = 5
SEED = 0
SHIPPED_FILE = "fit_predictions.npz"
SHIPPED_DATA = ("mmlu_pro_dev", "llmrouter_dev")  # folders under leeroo_local/data


@dataclass
class Predictions:
    """scores[i, j]: predicted outcome of columns[j] on question_ids[i], from a policy trained
    on the other folds; fold[i] is the question's fold (-1: no text, base rates only)."""

    question_ids: list[str]
    columns: list[str]
    scores: np.ndarray
    fold: np.ndarray
    key: str
    seconds: float = 0.0
    source: str = "computed"  # computed | cache | shipped

    def select(self, question_ids: Sequence[str], columns: Sequence[str]) -> np.ndarray:
        """The [questions x columns] block for these ids and columns (in that order)."""
        rows = {q: i for i, q in enumerate(self.question_ids)}
        cols = {c: j for j, c in enumerate(self.columns)}
        missing = [q for q in question_ids if q not in rows][:3]
        if missing or any(c not in cols for c in columns):
            raise DataError(f"no prediction for {missing or [c for c in columns if c not in cols]}")
        return self.scores[np.ix_([rows[q] for q in question_ids], [cols[c] for c in columns])]


def _config():
    """The features `policy train` uses (words and form tokens, policy v3 on): fit judges a
    universe by how the policy it will ship routes, so its predictions come from that recipe
    (head, kind estimate and neighbourhood blend), not from the head alone (RECIPE 1 did; it
    understated routing on the mixed-task data, where the kind of work decides)."""
    from ..policy.features import FeatureConfig

    return FeatureConfig()


def data_key(matrix: OutcomeMatrix, columns: Sequence[str], folds: int = FOLDS,
             seed: int = SEED) -> str:
    """Hash of what the predictions depend on: the data of `columns` and the recipe."""
    digest = hashlib.sha256()
    sub = matrix.select(list(columns))
    recipe = {"recipe": RECIPE, "folds": folds, "seed": seed, "features": _config().to_dict()}
    digest.update(json.dumps([recipe, list(columns)], sort_keys=True).encode())
    digest.update("\n".join(sub.question_ids).encode())
    digest.update(np.nan_to_num(sub.scores.astype(np.float32), nan=-1.0).tobytes())
    for qid in sub.question_ids:
        rec = matrix.questions.get(qid) or {}
        digest.update(json.dumps([rec.get("question", ""), rec.get("options") or []]).encode())
    return digest.hexdigest()[:32]


@dataclass
class FoldTask:
    """One fold's training and held-out questions (picklable: folds may run in processes)."""

    train_texts: list[str]
    train_y: np.ndarray
    test_texts: list[str]
    test_rows: np.ndarray
    seed: int
    train_kinds: list[str | None] | None = None  # each training question's task, if known
    costs: np.ndarray | None = None              # per column, for the blend's cost sweep


def run_fold(task: FoldTask) -> np.ndarray:
    """Train the policy (`policy train`'s recipe) on the fold's training questions; predict its
    held-out ones."""
    from ..policy.recipe import fit_policy

    costs = task.costs if task.costs is not None else np.ones(task.train_y.shape[1])
    kinds = task.train_kinds if task.train_kinds and any(task.train_kinds) else None
    fitted = fit_policy(task.train_texts, task.train_y, costs, _config(), seed=task.seed,
                        kinds=kinds)
    return fitted.predict(task.test_texts)


def column_costs(matrix: OutcomeMatrix) -> np.ndarray:
    """Each column's cost as `policy train` reads it (experts.csv; 1.0 where unknown)."""
    costs = np.asarray(matrix.costs(default=np.nan), dtype=np.float64)
    return np.where(np.isfinite(costs), costs, 1.0)


def fold_tasks(matrix: OutcomeMatrix, columns: Sequence[str], folds: int = FOLDS,
               seed: int = SEED) -> tuple[list[FoldTask], np.ndarray, np.ndarray]:
    """The folds' tasks, each question's fold (-1: no text) and the base-rate predictions
    that questions without text keep."""
    from ..policy.model import base_rates
    from ..policy.train import kinds_of, texts_of

    sub = matrix.select(list(columns))
    Y = sub.scores.astype(np.float64)
    rows, texts = texts_of(sub)
    kind = dict(zip(rows, kinds_of(sub, rows)))
    costs = column_costs(sub)
    rows = np.asarray(rows, dtype=int)
    fold = np.full(len(sub.question_ids), -1)
    if rows.size:
        fold[rows] = np.random.default_rng(seed).permutation(rows.size) % folds
    text_of = dict(zip(rows.tolist(), texts))
    tasks = []
    for f in range(folds if rows.size >= 2 * folds else 0):
        train, test = rows[fold[rows] != f], rows[fold[rows] == f]
        tasks.append(FoldTask([text_of[i] for i in train], Y[train],
                              [text_of[i] for i in test], test, seed,
                              [kind[i] for i in train], costs))
    return tasks, fold, np.broadcast_to(base_rates(Y), Y.shape).copy()


def assemble(matrix: OutcomeMatrix, columns: Sequence[str], tasks: list[FoldTask],
             results: list[np.ndarray], fold: np.ndarray, base: np.ndarray, folds: int = FOLDS,
             seed: int = SEED, seconds: float = 0.0) -> Predictions:
    P = base
    for task, pred in zip(tasks, results):
        P[task.test_rows] = pred
    P = P.astype(np.float16).astype(np.float32)  # as stored: a cached run decides the same
    return Predictions(list(matrix.question_ids), list(columns), P, fold,
                       data_key(matrix, columns, folds, seed), seconds)


def cross_validated(matrix: OutcomeMatrix, columns: Sequence[str], folds: int = FOLDS,
                    seed: int = SEED, log: Callable[[str], None] | None = None,
                    jobs: int = 1) -> Predictions:
    """Train one policy per fold on `columns` and predict the held-out questions (the folds
    in `jobs` processes)."""
    started = time.perf_counter()
    tasks, fold, base = fold_tasks(matrix, columns, folds, seed)
    if jobs > 1 and len(tasks) > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(min(jobs, len(tasks))) as pool:
            results = list(pool.map(run_fold, tasks))
    else:
        results = []
        for f, task in enumerate(tasks):
            tick = time.perf_counter()
            results.append(run_fold(task))
            if log:
                log(f"fold {f + 1}/{len(tasks)}: {len(task.train_texts)} questions, "
                    f"{time.perf_counter() - tick:.0f} s")
    return assemble(matrix, columns, tasks, results, fold, base, folds, seed,
                    time.perf_counter() - started)


def shipped_folders() -> list[Path]:
    """The shipped outcome folders that carry their cross-validated predictions (the MMLU-Pro
    and the mixed-task development data); a file is used only when its key matches."""
    data = default_data_dir().parent
    return [data / name for name in SHIPPED_DATA]


def cache_dir() -> Path:
    return paths.home() / "cache" / "fit"


def save(pred: Predictions, path: Path) -> Path:
    """Write atomically (np.savez appends .npz to a name without it, so the name has it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.npz")
    with removed_on_failure(tmp):
        np.savez_compressed(tmp, scores=pred.scores.astype(np.float16),
                            fold=pred.fold.astype(np.int8),
                            meta=np.array(json.dumps({"key": pred.key, "columns": pred.columns,
                                                      "question_ids": pred.question_ids,
                                                      "seconds": pred.seconds})))
        tmp.replace(path)
    return path


def load(path: Path, key: str | None = None) -> Predictions | None:
    """The predictions in `path` when it exists and matches `key`; None otherwise (a damaged
    cache file is ignored and recomputed, never trusted)."""
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            if key is not None and meta["key"] != key:
                return None
            return Predictions(meta["question_ids"], meta["columns"],
                               z["scores"].astype(np.float32), z["fold"].astype(int), meta["key"],
                               float(meta.get("seconds", 0.0)))
    except (OSError, ValueError, KeyError, json.JSONDecodeError):
        return None


def predictions(matrix: OutcomeMatrix, columns: Sequence[str], folds: int = FOLDS,
                seed: int = SEED, log: Callable[[str], None] | None = None,
                jobs: int = 1) -> Predictions:
    """Cross-validated predictions: from the shipped file or the user's cache when the key
    matches, else computed and cached."""
    columns = sorted(columns)
    key = data_key(matrix, columns, folds, seed)
    for path, source in ([(f / SHIPPED_FILE, "shipped") for f in shipped_folders()]
                         + [(cache_dir() / f"{key}.npz", "cache")]):
        found = load(path, key)
        if found is not None:
            found.source = source
            return found
    pred = cross_validated(matrix, columns, folds, seed, log, jobs)
    try:
        save(pred, cache_dir() / f"{key}.npz")
    except OSError:
        pass  # a read-only home only costs the next run the same minutes
    return pred
