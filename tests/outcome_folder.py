"""Write small outcome-data folders in the shipped format (questions, outcomes, experts)."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import numpy as np

# Columns of real catalog experts, so the catalog's candidates find their data.
CATALOG_COLUMNS = ("Meta-Llama-3_1-8B-Instruct", "mathstral-7B", "Phi-3-mini-4k-instruct", "Yi-6B")


def write_folder(
    folder: Path, scores: np.ndarray, columns: list[str], question_ids: list[str] | None = None,
    gz: bool = True, texts: list[str] | None = None, costs: list[float] | None = None,
) -> Path:
    """A data folder with `scores` [questions x columns]; NaN cells are written empty; `texts`
    replace the placeholder question texts, `costs` the experts' active_params_b (7)."""
    folder.mkdir(parents=True, exist_ok=True)
    ids = question_ids or [f"q{i}" for i in range(scores.shape[0])]
    opener = (lambda p: gzip.open(p, "wt", encoding="utf-8")) if gz else (
        lambda p: open(p, "w", encoding="utf-8"))
    suffix = ".gz" if gz else ""
    with opener(folder / f"outcomes.csv{suffix}") as fh:
        w = csv.writer(fh)
        w.writerow(["question_id", *columns])
        for qid, row in zip(ids, scores):
            w.writerow([qid, *("" if np.isnan(v) else f"{v:g}" for v in row)])
    with opener(folder / f"questions.jsonl{suffix}") as fh:
        for i, qid in enumerate(ids):
            rec = {"id": qid, "category": ["math", "law"][i % 2], "source": "test",
                   "question": texts[i] if texts else f"question {qid}?",
                   "options": ["a", "b", "c"], "answer": "A"}
            fh.write(json.dumps(rec) + "\n")
    with open(folder / "experts.csv", "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["model", "family", "params_b", "active_params_b", "instruct", "kind"])
        for j, c in enumerate(columns):
            cost = f"{costs[j]:g}" if costs else "7"
            w.writerow([c, "test", cost, cost, "yes", "open"])
    return folder


def random_scores(n_questions: int, n_columns: int, seed: int = 0, missing: float = 0.0) -> np.ndarray:
    """0/1 outcomes with column-specific accuracy; a share `missing` of cells left empty."""
    rng = np.random.default_rng(seed)
    skill = rng.uniform(0.2, 0.8, n_columns)
    scores = (rng.random((n_questions, n_columns)) < skill).astype(np.float32)
    if missing:
        scores[rng.random(scores.shape) < missing] = np.nan
    return scores


TOPICS = {
    "math": "integral derivative equation solve polynomial matrix",
    "law": "court statute contract plaintiff liability tort",
    "bio": "cell protein enzyme gene membrane organism",
}


def topic_matrix(n: int = 240, seed: int = 0, fractional: bool = True
                 ) -> tuple[np.ndarray, list[str], list[str], list[str]]:
    """Questions whose text says their topic, and experts whose skill depends on it:
    `mathy` is good at math, `lawyer` at law, `generalist` middling everywhere and cheap.
    Returns (scores, columns, texts, topics); scores are fractions in [0, 1] when fractional."""
    rng = np.random.default_rng(seed)
    columns = ["mathy", "lawyer", "generalist"]
    skill = {"math": (0.9, 0.2, 0.5), "law": (0.2, 0.9, 0.5), "bio": (0.4, 0.4, 0.55)}
    topics = [list(TOPICS)[i % 3] for i in range(n)]
    texts = []
    scores = np.zeros((n, 3), dtype=np.float32)
    for i, t in enumerate(topics):
        words = TOPICS[t].split()
        filler = rng.choice(["what", "which", "is", "the", "of", "a", "find", "given"], 6)
        texts.append(" ".join(rng.permutation(list(rng.choice(words, 4)) + list(filler))) + "?")
        p = np.array(skill[t])
        scores[i] = (np.clip(p + rng.normal(0, 0.1, 3), 0, 1) if fractional
                     else (rng.random(3) < p).astype(np.float32))
    return np.round(scores, 3), columns, texts, topics
