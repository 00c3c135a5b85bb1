"""Where self-play questions come from: a dataset file, or an LLM generator.

Questions every expert answers (or none does) carry no routing signal, so the generator is
prompted per subdomain and difficulty, and what it writes is validated: a malformed generation
is rejected and counted, never stored.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DataError, LeerooError
from ..scoring import LETTERS


@dataclass
class Question:
    """A question with what is needed to score answers to it."""

    id: str
    text: str
    options: list[str] = field(default_factory=list)  # multiple choice when non-empty
    answer: str = ""  # a letter for multiple choice, else the reference answer
    category: str = ""
    source: str = ""
    generator: str | None = None


class DatasetSource:
    """Questions from a file in the shared format (questions.jsonl[.gz]), drawn without repeats."""

    def __init__(self, path: str | Path, name: str | None = None):
        self.path = Path(path)
        self.name = name or f"dataset:{self.path.parent.name or self.path.stem}"
        opener = gzip.open if self.path.suffix == ".gz" else open
        try:
            with opener(self.path, "rt", encoding="utf-8") as fh:
                records = [json.loads(line) for line in fh if line.strip()]
        except (OSError, json.JSONDecodeError) as exc:
            raise DataError(f"{self.path}: cannot read questions: {exc}") from None
        self.questions = [
            Question(id=str(r["id"]), text=r["question"], options=list(r.get("options") or []),
                     answer=str(r.get("answer", "")), category=r.get("category", ""),
                     source=self.name)
            for r in records if "id" in r and "question" in r
        ]
        if not self.questions:
            raise DataError(f"{self.path}: no questions with 'id' and 'question'")

    def draw(self, n: int, rng: random.Random, exclude: set[str] = frozenset(),
             max_chars: int | None = None, multiple_choice: bool = False) -> list[Question]:
        """Up to n questions not in `exclude`: at most `max_chars` of question and options, and
        with options when `multiple_choice` (log-likelihood scoring needs them)."""
        pool = [q for q in self.questions if q.id not in exclude
                and (max_chars is None or len(q.text) + sum(map(len, q.options)) <= max_chars)
                and (q.options or not multiple_choice)]
        return rng.sample(pool, min(n, len(pool)))


SUBDOMAINS = ["arithmetic", "algebra", "physics", "chemistry", "biology", "history",
              "geography", "law", "economics", "computer science", "philosophy", "health"]
DIFFICULTIES = ["easy", "tricky", "hard"]

GENERATOR_PROMPT = (
    "Write one {difficulty} multiple-choice question about {subdomain} with four options and "
    "exactly one correct option. Reply with JSON only, like "
    '{{"question": "...", "options": ["...", "...", "...", "..."], "answer": "B"}}\n'
)


def parse_generated(text: str) -> dict | None:
    """The JSON question a generator wrote, validated; None if malformed."""
    match = re.search(r"\{.*\}", text, flags=re.DOTALL)
    if not match:
        return None
    try:
        data = json.loads(match.group(0))
    except json.JSONDecodeError:
        return None
    question, options, answer = data.get("question"), data.get("options"), data.get("answer")
    if not isinstance(question, str) or len(question.strip()) < 10:
        return None
    if not isinstance(options, list) or not 2 <= len(options) <= 10:
        return None
    if not all(isinstance(o, str) and o.strip() for o in options):
        return None
    if len({o.strip().lower() for o in options}) != len(options):
        return None
    if not isinstance(answer, str) or answer.strip().upper() not in LETTERS[: len(options)]:
        return None
    return {"question": question.strip(), "options": [o.strip() for o in options],
            "answer": answer.strip().upper()}


class GeneratorSource:
    """Questions written by an expert of the universe, per subdomain and difficulty."""

    def __init__(self, service, expert: str, max_tokens: int = 200):
        self.service = service
        self.expert = expert
        self.max_tokens = max_tokens
        self.name = f"generator:{expert}"
        self.rejected = 0
        self.last_error: str | None = None  # the last failed generation's error, if any
        self.seconds = 0.0  # what generating cost, for the round's report
        self.energy_j = 0.0

    def draw(self, n: int, rng: random.Random, exclude: set[str] = frozenset(),
             max_chars: int | None = None, multiple_choice: bool = True) -> list[Question]:
        """Up to n valid questions in at most 4n attempts (a rejected one is counted)."""
        from ..backends.base import Sampling
        from ..runtime.service import Result

        out: list[Question] = []
        attempts = 0
        while len(out) < n and attempts < n * 4:
            attempts += 1
            subdomain, difficulty = rng.choice(SUBDOMAINS), rng.choice(DIFFICULTIES)
            prompt = GENERATOR_PROMPT.format(subdomain=subdomain, difficulty=difficulty)
            sampling = Sampling(max_tokens=self.max_tokens, temperature=0.9,
                                seed=rng.randrange(2**31))
            try:
                result = next(e for e in self.service.chat(
                    [{"role": "user", "content": prompt}], self.expert, sampling)
                    if isinstance(e, Result))
            except LeerooError as exc:  # e.g. the prompt does not fit: rejected, with why
                self.rejected += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                continue
            self.seconds += result.timings.total_s
            self.energy_j += result.energy.joules
            parsed = parse_generated(result.answer)
            if parsed is not None and max_chars is not None and (
                    len(parsed["question"]) + sum(map(len, parsed["options"])) > max_chars):
                parsed = None
            if parsed is None:
                self.rejected += 1
                continue
            qid = "gen-" + hashlib.sha1(parsed["question"].encode()).hexdigest()[:12]
            if qid in exclude or any(q.id == qid for q in out):
                self.rejected += 1
                continue
            out.append(Question(id=qid, text=parsed["question"], options=parsed["options"],
                                answer=parsed["answer"], category=subdomain, source=self.name,
                                generator=self.expert))
        return out
