"""Self-play test data: short multiple-choice questions that fit a tiny expert's context."""

from __future__ import annotations

import json
import random
from pathlib import Path

CATEGORIES = ("add", "sub", "mul")


def write_questions(path: Path, n: int = 40, seed: int = 0) -> Path:
    """A questions.jsonl in the shared format: n arithmetic questions with four options."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            a, b = rng.randint(2, 20), rng.randint(2, 20)
            kind = CATEGORIES[i % 3]
            value = {"add": a + b, "sub": a - b, "mul": a * b}[kind]
            sign = {"add": "+", "sub": "-", "mul": "*"}[kind]
            options = [str(value + d) for d in (0, 1, -1, 2)]
            rng.shuffle(options)
            fh.write(json.dumps({
                "id": f"q{i}", "category": kind, "question": f"What is {a} {sign} {b}?",
                "options": options, "answer": "ABCD"[options.index(str(value))],
            }) + "\n")
    return path
