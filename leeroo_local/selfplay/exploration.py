"""Which experts answer a self-play question.

With few experts (at most `threshold`) every question goes to all of them: the full row of
outcomes is the most informative training data and cheap enough. With more, epsilon-greedy:
the `top_k` experts the policy expects to do best, plus each of the others independently with
probability `epsilon`, so the policy keeps learning about experts it currently ranks low.
Without a policy the universe's order (fit's greedy order, best first) stands in for its ranking
("prior"). Every pick records how it was made.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

ALL, POLICY, PRIOR, EXPLORE = "all", "policy", "prior", "explore"
DEFAULT_THRESHOLD = 4


@dataclass(frozen=True)
class Pick:
    """One expert chosen for a question, and how."""

    expert: str
    chosen_by: str


def choose(experts: Sequence[str], rng: random.Random, epsilon: float = 0.1,
           scores: Mapping[str, float] | None = None, threshold: int = DEFAULT_THRESHOLD,
           top_k: int = 1) -> list[Pick]:
    """The experts to run on one question (see the module doc); `scores` is the policy's
    prediction per expert, None when there is no policy."""
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"epsilon must be in [0, 1], got {epsilon}")
    if top_k < 1:
        raise ValueError("top_k must be at least 1")
    if len(experts) <= threshold:
        return [Pick(e, ALL) for e in experts]
    order = list(range(len(experts)))
    if scores is not None:  # best predicted first; ties keep the universe's order
        order.sort(key=lambda i: -float(scores.get(experts[i], float("-inf"))))
    top = set(order[:top_k])
    how = POLICY if scores is not None else PRIOR
    picks = []
    for i, e in enumerate(experts):
        if i in top:
            picks.append(Pick(e, how))
        elif rng.random() < epsilon:  # drawn for every other expert, in universe order
            picks.append(Pick(e, EXPLORE))
    return picks
