"""Data plumbing of the policy command: which matrix to train on, and eval alignment."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError
from ..outcomes import OutcomeMatrix, load_matrix


def training_matrix(data: Path | None, store: str | None) -> OutcomeMatrix:
    """The outcome folder, or the evaluation store's rows of some sources."""
    if (data is None) == (store is None):
        raise DataError("give exactly one of --data DIR or --store SOURCE")
    if data is not None:
        return load_matrix(data)
    from ..store import open_db
    from ..store.evaluations import ensure_source, read_matrix

    db = open_db()
    sources = None if store == "all" else [s.strip() for s in store.split(",") if s.strip()]
    for source in sources or []:
        ensure_source(db, source)  # shipped outcomes (e.g. starter-mmlu-pro) on first use
    return read_matrix(db, sources)


def eval_report(router, data: Path) -> dict:
    """Score every question of `data` with the policy and judge it on the data's outcomes."""
    from ..policy.evaluate import evaluate
    from ..policy.features import prompt_text

    matrix = load_matrix(data)
    labels = router.labels
    cols, outs = [], []
    for j, (expert, column) in enumerate(zip(labels.experts, labels.columns)):
        match = column if column in matrix.experts else expert if expert in matrix.experts else None
        if match is not None:
            cols.append(match)
            outs.append(j)
    if not cols:
        raise DataError(f"{data}: none of the policy's experts ({', '.join(labels.experts)}) "
                        "is a column of this data")
    rows = [i for i, q in enumerate(matrix.question_ids) if q in matrix.questions]
    if not rows:
        raise DataError(f"{data}: no question texts (questions.jsonl.gz) to route")
    texts = [prompt_text(str(matrix.questions[matrix.question_ids[i]]["question"]),
                         matrix.questions[matrix.question_ids[i]].get("options") or None)
             for i in rows]
    P = router.score_many(texts)[:, outs]
    S = matrix.select(cols).scores[rows].astype(np.float64)
    keep = ~np.isnan(S).all(axis=1)
    report = evaluate(P[keep], S[keep], router.costs[outs], [labels.experts[j] for j in outs])
    report["policy_name"] = labels.name
    report["cost_unit"] = labels.cost_unit
    missing = [e for j, e in enumerate(labels.experts) if j not in outs]
    if missing:
        report["experts_not_in_data"] = missing
    return report
