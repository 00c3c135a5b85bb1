"""Outcome columns -> catalog experts: what a policy for the runtime is trained on.

    matrix, rename, costs, unit = catalog_names(matrix, catalog)
    train_policy(matrix, out_dir, rename=rename, costs=costs, cost_unit=unit)

(`leeroo-local policy train --names catalog` does this; so can self-play.)
"""

from __future__ import annotations

import numpy as np

from ..catalog import Catalog
from ..errors import DataError
from ..store.outcomes import OutcomeMatrix, split_column


def catalog_names(matrix: OutcomeMatrix, catalog: Catalog, experts: list[str] | None = None
                  ) -> tuple[OutcomeMatrix, dict[str, str], dict[str, float], str]:
    """Keep the columns of catalog experts (by data_column or id), named by catalog id. Costs:
    the data's own (experts.csv) where it has them, else from the catalog: GB of weights read
    per token when every column was measured at a quantization the catalog lists, else active
    parameters (billions). Columns of one expert from several sources (MMLU-Pro's
    `Meta-Llama-3_1-8B-Instruct` and the mixed-task data's `llama-3.1-8b-instruct`, both
    the catalog's `llama-3.1-8b-instruct`) become one column (merge_columns). Returns
    (matrix, rename, costs, cost unit)."""
    by_column = {e.id: e for e in catalog.experts}
    by_column.update(catalog.by_column())  # data_column and data_aliases
    keep = [c for c in matrix.experts if split_column(c)[0] in by_column]
    if experts:
        unknown = [x for x in experts if x not in by_column]
        if unknown:
            raise DataError(f"not catalog experts or data columns of any: {', '.join(unknown)}")
        wanted = {by_column[x].id for x in experts}
        keep = [c for c in keep if by_column[split_column(c)[0]].id in wanted]
    if not keep:
        raise DataError("no column of this data belongs to a catalog expert (data_column)")
    matrix, keep = merge_columns(matrix, keep, lambda c: (by_column[split_column(c)[0]].id,
                                                          split_column(c)[1]))
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


def merge_columns(matrix: OutcomeMatrix, columns: list[str], key) -> tuple[OutcomeMatrix, list[str]]:
    """One column per key(column) (an expert at a quantization): the first column's name, its
    cells where it has them, the others' elsewhere (their mean where several have one). Returns
    the matrix with the merged columns and the columns kept, in order."""
    groups: dict = {}
    for c in columns:
        groups.setdefault(key(c), []).append(c)
    if all(len(g) == 1 for g in groups.values()):
        return matrix, columns
    scores = matrix.scores.copy()
    for group in groups.values():
        if len(group) > 1:
            block = matrix.scores[:, [matrix.experts.index(c) for c in group]].astype(np.float64)
            seen = ~np.isnan(block)
            merged = np.where(seen.any(1), np.nansum(block, 1) / np.maximum(seen.sum(1), 1), np.nan)
            scores[:, matrix.experts.index(group[0])] = merged
    out = OutcomeMatrix(matrix.question_ids, matrix.experts, scores, matrix.info, matrix.questions)
    return out, [g[0] for g in groups.values()]


def _has_quant(expert, quant: str) -> bool:
    return any(q.type.upper() == quant.upper() for q in expert.quants)
