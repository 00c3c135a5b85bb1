"""What fit chooses among: (expert, quantization) candidates and their quality matrix."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .report import Skipped

NO_OUTCOMES = "no outcomes in this data"  # why an expert with a column elsewhere is left out

@dataclass(frozen=True)
class Candidate:
    """One (expert, quantization) pair that fit may choose."""

    expert: str
    quant: str
    data_column: str
    column: str  # the data column its quality comes from
    factor: float  # 1.0 when measured
    basis: str
    memory_bytes: int
    gpu_bytes: int
    cpu_bytes: int
    disk_bytes: int
    basis_kind: str = "outcomes"  # outcomes | quant eval | calibrated | table | unquantized


@dataclass
class CandidateSet:
    """Candidates with their quality matrix [questions x candidates] (no missing cells)."""

    candidates: list[Candidate]
    quality: np.ndarray
    question_ids: list[str]
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def groups(self) -> np.ndarray:
        ids = {c.expert: i for i, c in reversed(list(enumerate(self.candidates)))}
        return np.array([ids[c.expert] for c in self.candidates])

    def memory(self) -> np.ndarray:
        return np.array([c.memory_bytes for c in self.candidates], dtype=np.float64)

    def disk(self) -> np.ndarray:
        return np.array([c.disk_bytes for c in self.candidates], dtype=np.float64)
