"""Data plumbing of the policy command: which matrix to train on, names, eval alignment."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError
from ..outcomes import OutcomeMatrix, load_matrix, split_column


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


def catalog_names(matrix: OutcomeMatrix, experts: list[str] | None
                  ) -> tuple[OutcomeMatrix, dict[str, str], dict[str, float], str]:
    """Keep the columns of catalog experts (by data_column or id), named by catalog id. Costs:
    the data's own (experts.csv) where it has them, else from the catalog: GB of weights read
    per token when every column was measured at a quantization the catalog lists, else active
    parameters (billions). Returns (matrix, rename, costs, cost unit)."""
    from ..catalog import load_user_catalog

    catalog = load_user_catalog()
    by_column = {}
    for e in catalog.experts:
        by_column[e.id] = e
        if e.data_column:
            by_column[e.data_column] = e
    keep = [c for c in matrix.experts if split_column(c)[0] in by_column]
    if experts:
        unknown = [x for x in experts if x not in by_column]
        if unknown:
            raise DataError(f"not catalog experts or data columns of any: {', '.join(unknown)}")
        wanted = {by_column[x].id for x in experts}
        keep = [c for c in keep if by_column[split_column(c)[0]].id in wanted]
    if not keep:
        raise DataError("no column of this data belongs to a catalog expert (data_column)")
    sub = matrix.select(keep)
    rename = {split_column(c)[0]: by_column[split_column(c)[0]].id for c in keep}
    quantized = all(split_column(c)[1] and _has_quant(by_column[split_column(c)[0]], split_column(c)[1])
                    for c in keep)
    unit = "GB of weights read per token" if quantized else "active parameters (billions)"
    costs: dict[str, float] = {}
    for c, data_cost in zip(keep, sub.costs(default=np.nan)):
        expert, quant = by_column[split_column(c)[0]], split_column(c)[1]
        if np.isfinite(data_cost):
            costs[c] = float(data_cost)
        elif quantized:
            share = expert.arch.active_params_b / expert.arch.params_b if expert.arch else 1.0
            costs[c] = expert.quant(quant).size_bytes * share / 1e9
        elif expert.arch:
            costs[c] = expert.arch.active_params_b
    return sub, rename, costs, unit


def _has_quant(expert, quant: str) -> bool:
    return any(q.type.upper() == quant.upper() for q in expert.quants)


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
