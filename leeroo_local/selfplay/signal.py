"""Which questions carry routing signal: those on which the experts run on them disagree.

A question every expert answers right (or every one wrong) says nothing about which expert to
route to. Its spread is max - min of the scores; at or above HIGH_SIGNAL (0.5: one right, one
wrong, for exact scoring) it separates experts. A question with fewer than two scores cannot
tell, and does not count in the share.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

HIGH_SIGNAL = 0.5


def spread(scores: Mapping[str, float]) -> float | None:
    """max - min of the scores of one question; None with fewer than two."""
    values = list(scores.values())
    return max(values) - min(values) if len(values) >= 2 else None


@dataclass(frozen=True)
class SignalSummary:
    """How many questions of a round separate experts."""

    questions: int
    compared: int  # with at least two scores
    high: int  # spread >= HIGH_SIGNAL

    @property
    def share(self) -> float | None:
        return self.high / self.compared if self.compared else None


def summarize(cells: Mapping[str, Mapping[str, float]],
              threshold: float = HIGH_SIGNAL) -> tuple[SignalSummary, dict[str, float | None]]:
    """The summary over questions -> {expert: score}, and each question's spread."""
    spreads = {qid: spread(row) for qid, row in cells.items()}
    compared = [s for s in spreads.values() if s is not None]
    return SignalSummary(len(cells), len(compared), sum(s >= threshold for s in compared)), spreads
