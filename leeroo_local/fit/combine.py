"""Several outcome sources as one fit objective. Pure numpy, no I/O.

Each source (MMLU-Pro, the mixed-task data, a folder) has its own candidates, quality and
cross-validated predictions. Its questions score only the candidates that have an outcome for
them: elsewhere a candidate's quality is 0 and its prediction MISSING, so the router never sends
a question to an expert that was never measured on that kind of work, and a universe with no
member measured on a source scores 0 there. Rows are weighted so that every source counts the
same, whatever its size: the objective is the mean over sources of each source's accuracy.
With one source the weights are 1 and nothing changes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .candidates import NO_OUTCOMES, Candidate, CandidateSet
from .report import Skipped

# A prediction below any real one (the policy's are in [0, 1]); finite, as the search needs.
MISSING = -1e6


@dataclass
class SourcePart:
    """One source's candidates, quality and routed predictions [questions x candidates]."""

    name: str
    cs: CandidateSet
    pred: np.ndarray


@dataclass
class Combined:
    """The sources side by side: `cs.quality` is weighted (its row mean is the objective),
    `raw` is not; `rows[i]` are source i's rows and `has[i, j]` says whether candidate j has
    outcomes on source i."""

    cs: CandidateSet
    pred: np.ndarray
    raw: np.ndarray
    weights: np.ndarray
    rows: list[slice]
    has: np.ndarray
    names: list[str]


def combine(parts: list[SourcePart]) -> Combined:
    """One candidate set over every source's questions (candidates keyed by expert and quant, in
    the order the sources first list them)."""
    keys: dict[tuple[str, str], int] = {}
    candidates: list[Candidate] = []
    for part in parts:
        for c in part.cs.candidates:
            if (c.expert, c.quant) not in keys:
                keys[(c.expert, c.quant)] = len(candidates)
                candidates.append(c)
    n_rows = sum(p.cs.quality.shape[0] for p in parts)
    raw = np.zeros((n_rows, len(candidates)), np.float32)
    pred = np.full((n_rows, len(candidates)), MISSING, np.float32)
    weights = np.ones(n_rows, np.float32)
    has = np.zeros((len(parts), len(candidates)), bool)
    rows, start = [], 0
    for i, part in enumerate(parts):
        n = part.cs.quality.shape[0]
        cols = [keys[(c.expert, c.quant)] for c in part.cs.candidates]
        raw[start:start + n, cols] = part.cs.quality
        pred[start:start + n, cols] = part.pred
        has[i, cols] = True
        if len(parts) > 1:
            weights[start:start + n] = n_rows / (len(parts) * n)
        rows.append(slice(start, start + n))
        start += n
    quality = np.ascontiguousarray(raw * weights[:, None], dtype=np.float32)
    question_ids = [f"{p.name}:{q}" if len(parts) > 1 else q
                    for p in parts for q in p.cs.question_ids]
    present = {c.expert for c in candidates}
    skipped: dict[tuple[str, str | None], Skipped] = {}
    for part in parts:  # an expert no source could use; the telling reason over "no outcomes"
        for s in part.cs.skipped:
            key = (s.id, s.quant)
            if s.id not in present and (key not in skipped or skipped[key].reason == NO_OUTCOMES):
                skipped[key] = s
    notes = [f"{p.name}: {n}" if len(parts) > 1 else n for p in parts for n in p.cs.notes]
    cs = CandidateSet(candidates, quality, question_ids, list(skipped.values()), notes)
    return Combined(cs, pred, raw, weights, rows, has, [p.name for p in parts])
