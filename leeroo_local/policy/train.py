"""Train a routing policy from an outcome matrix and write its folder (ONNX graph + labels).

Library entry point (self-play retrains through it, on a plain install: numpy and onnx only):

    from leeroo_local.policy.train import train_policy
    report = train_policy(matrix, out_dir, experts=None, seed=0)

Never imported at routing time (an import-linter contract keeps service and the runtime away).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..store.outcomes import OutcomeMatrix, split_column
from .embed import TOKENIZER_FILE
from .export import write_graph
from .features import FeatureConfig, prompt_text
from .labels import PolicyLabels, write_labels, write_vocab
from .model import LinearModel, base_rates, log_loss
from .recipe import (DEFAULT_EMBEDDER, Design, FittedPolicy, design, fit_head, fit_policy,
                     transform)
from .sparse import CSR

__all__ = ["Design", "TrainReport", "design", "fit_model", "kinds_of", "texts_of", "train_policy",
           "transform"]

MIN_QUESTIONS = 20        # fewer cannot say anything about which expert is better where


@dataclass
class TrainReport:
    """What was trained, on what, and how well it fits (log loss on its own training data)."""

    out_dir: str
    experts: list[str]
    questions: int
    skipped_questions: int
    vocab: int
    l2_x_n: float | None  # None: text did not help on held-out questions; base rates only
    selection: list[dict]
    train_log_loss: float
    base_log_loss: float
    seconds: float
    size_bytes: int
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def texts_of(matrix: OutcomeMatrix) -> tuple[list[int], list[str]]:
    """Rows that have a question text, and their prompts (question, then lettered options)."""
    rows, texts = [], []
    for i, qid in enumerate(matrix.question_ids):
        rec = matrix.questions.get(qid)
        if rec and str(rec.get("question", "")).strip():
            rows.append(i)
            texts.append(prompt_text(str(rec["question"]), rec.get("options") or None))
    return rows, texts


def kinds_of(matrix: OutcomeMatrix, rows: Sequence[int]) -> list[str | None]:
    """Each row's kind of work for the kind estimate (kinds.py): its question's `category`
    (the task), None where the data has none; prefixed by the evaluation store's source when
    the rows come from several (MMLU-Pro's `math` is not the mixed-task data's `math`: other
    prompts, other scorers)."""
    recs = [matrix.questions.get(matrix.question_ids[i]) or {} for i in rows]
    several = len({r.get("outcome_source") for r in recs if r.get("outcome_source")}) > 1
    out = []
    for rec in recs:
        kind = str(rec["category"]) if rec.get("category") else None
        if kind and several and rec.get("outcome_source"):
            kind = f"{rec['outcome_source']}:{kind}"
        out.append(kind)
    return out


def fit_model(X: CSR, Y: np.ndarray, seed: int = 0) -> tuple[LinearModel, float | None, list[dict]]:
    """The policy's head on a design matrix: L2 chosen on held-out questions, then refit on
    all of them (strength None: base rates only)."""
    model, strength, trials, _ = fit_head(X, Y, seed)
    return model, strength, trials


def train_policy(matrix: OutcomeMatrix, out_dir: str | Path, experts: Sequence[str] | None = None,
                 seed: int = 0, *, name: str | None = None,
                 rename: Mapping[str, str] | None = None,
                 costs: Mapping[str, float] | None = None,
                 cost_unit: str | None = None, source: str = "",
                 config: FeatureConfig | None = None,
                 embedder: str | Path | None = DEFAULT_EMBEDDER) -> TrainReport:
    """Train on `matrix` (optionally only `experts`, by column name) and write `out_dir`.

    rename maps an expert name of the data (the part of a column before any @QUANT) to the
    name the policy should use (the runtime uses catalog ids); costs (by column or by the
    policy's name of the expert) override experts.csv, in `cost_unit`. embedder: a folder with
    a static subword table and its tokenizer (default: the shipped MiniLM distillation); None
    trains the n-gram head alone.
    """
    started = time.perf_counter()
    config = config or FeatureConfig()
    matrix = matrix.select(list(experts)) if experts else matrix
    warnings: list[str] = []
    empty = [e for j, e in enumerate(matrix.experts) if np.isnan(matrix.scores[:, j]).all()]
    if empty:
        raise DataError(f"no outcomes for {', '.join(empty)}: drop them with --experts")
    rows, texts = texts_of(matrix)
    if len(rows) < MIN_QUESTIONS:
        raise DataError(f"{len(rows)} questions with text: a policy needs at least {MIN_QUESTIONS}")
    Y = matrix.scores[rows].astype(np.float64)
    labels = _labels(matrix, name or Path(out_dir).name, config, None, costs, rename, warnings)
    kinds = kinds_of(matrix, rows)
    fitted = fit_policy(texts, Y, np.array(labels.costs), config, embedder, seed,
                        kinds=kinds if any(kinds) else None)
    d, model, strength, trials = fitted.design, fitted.model, fitted.strength, fitted.trials
    labels.model.update(_model_facts(fitted))
    if cost_unit:
        labels.cost_unit = cost_unit
    rates = base_rates(Y)
    labels.training.update({
        "source": source, "questions": len(rows), "vocab": len(d.vocab), "seed": seed,
        "base_rates": [round(float(r), 6) for r in rates],
    })
    size = _write(Path(out_dir), labels, fitted)
    train_ll = log_loss(np.clip(fitted.predict(texts), 1e-6, 1 - 1e-6), Y)
    base_ll = log_loss(np.broadcast_to(rates, Y.shape), Y)
    return TrainReport(str(out_dir), labels.experts, len(rows), len(matrix.question_ids) - len(rows),
                       len(d.vocab), strength, trials, train_ll, base_ll,
                       time.perf_counter() - started, size, warnings)


def _model_facts(fitted: FittedPolicy) -> dict:
    blend = fitted.blend.to_dict()
    facts = {"l2_x_n": fitted.strength, "text_features": fitted.strength is not None,
             "blend": blend}
    if fitted.hoods is not None:
        facts.update(kind="tfidf-logistic+neighbourhoods", tokenizer=TOKENIZER_FILE,
                     dense_dims=int(fitted.dense.table.shape[1]),
                     embedder=fitted.dense.folder.name)
    if fitted.kinds is not None:  # the graph's second output: the posterior over these
        facts.update(kinds=list(fitted.kinds.kinds), kinds_l2_x_n=fitted.kinds.l2_x_n)
        if fitted.hoods is None:
            facts["kind"] = "tfidf-logistic+kinds"
    return facts


def _kind_arrays(fitted: FittedPolicy) -> dict | None:
    if fitted.kinds is None:
        return None
    k = fitted.kinds
    return {"weights": k.weights, "bias": k.bias, "scores": k.scores,
            "blend": fitted.blend.to_dict()}


def _dense_arrays(fitted: FittedPolicy) -> dict | None:
    if fitted.hoods is None:
        return None
    h = fitted.hoods
    return {"table": fitted.dense.table, "piece_idf": fitted.dense.idf,
            "center": fitted.dense.center, "blend": fitted.blend.to_dict(),
            "memory": h.memory, "outcomes": h.outcomes, "centroids": h.centroids,
            "cluster_scores": h.cluster_scores}


def _labels(matrix, name, config, strength, costs, rename, warnings) -> PolicyLabels:
    data_costs = matrix.costs(default=np.nan)
    names, quants, cost_list = [], [], []
    for j, column in enumerate(matrix.experts):
        expert, quant = split_column(column)
        names.append((rename or {}).get(expert, expert))
        quants.append(quant)
        cost = (costs or {}).get(column, (costs or {}).get(names[-1], data_costs[j]))
        if cost is None or not np.isfinite(cost):
            warnings.append(f"no cost known for {column}: 1.0 used")
            cost = 1.0
        cost_list.append(float(cost))
    return PolicyLabels(
        name=name, experts=names, quants=quants, columns=list(matrix.experts), costs=cost_list,
        features=config.to_dict(),
        model={"kind": "tfidf-logistic", "l2_x_n": strength, "text_features": strength is not None},
        training={"created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
    )


def _write(out: Path, labels: PolicyLabels, fitted: FittedPolicy) -> int:
    """Write into a sibling temporary folder, then swap it in: a policy in use is never half
    written. An existing folder that is not a policy is refused, not overwritten."""
    if out.exists() and any(out.iterdir()) and not (out / "policy.json").exists():
        raise DataError(f"{out}: exists and is not a policy folder; choose another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        d, model = fitted.design, fitted.model
        write_vocab(tmp, d.vocab, labels)
        write_graph(tmp / labels.onnx_file, d.idf, model.weights, model.bias, _dense_arrays(fitted),
                    _kind_arrays(fitted))
        if fitted.hoods is not None:
            shutil.copyfile(fitted.dense.folder / TOKENIZER_FILE, tmp / TOKENIZER_FILE)
        write_labels(tmp, labels)
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        if out.exists():
            out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return sum(f.stat().st_size for f in out.iterdir() if f.is_file())
