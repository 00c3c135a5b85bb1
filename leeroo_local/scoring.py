"""Scoring answers: multiple choice (answer extraction or log-likelihood), short answers, judge.

Pure functions, a low tier: self-play scores its rounds with them and `quant eval` its
multiple-choice agreement.

Every evaluator returns a score in [0, 1], or None when the answer cannot be scored (an
unparseable answer is counted, never guessed).
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

LETTERS = "ABCDEFGHIJ"
_PATTERNS = [
    r"answer is\s*\(?([A-J])\)?(?![a-z])",
    r"answer:\s*\(?([A-J])\)?(?![a-z])",
    r"^\s*\(?([A-J])\)?\s*(?:[.):]|$)",
    r"\(([A-J])\)",
]


def extract_choice(text: str, n_options: int = 10) -> str | None:
    """The option letter an answer commits to ("The answer is (C)", "Answer: C", "C."), or None."""
    allowed = LETTERS[:n_options]
    for pattern in _PATTERNS:
        for match in re.finditer(pattern, text, flags=re.IGNORECASE | re.MULTILINE):
            letter = match.group(1).upper()
            if letter in allowed:
                return letter
    return None


def score_choice(text: str, correct: str, n_options: int = 10) -> float | None:
    """1.0 if the extracted letter is the correct one, 0.0 if another, None if none found."""
    letter = extract_choice(text, n_options)
    return None if letter is None else float(letter == correct.upper())


def mc_prompt(question: str, options: list[str]) -> str:
    """The prompt shape used for multiple-choice questions (options lettered A, B, ...)."""
    lines = [question.strip(), ""]
    lines += [f"{LETTERS[i]}. {opt}" for i, opt in enumerate(options)]
    return "\n".join(lines) + "\nAnswer:"


def score_loglikelihood(loglik: list[float], correct: str,
                        lengths: list[int] | None = None) -> float:
    """1.0 when the correct option has the highest log-likelihood.

    With `lengths` (characters of each continuation) the log-likelihood is divided by length
    first: lm-evaluation-harness's acc_norm, fairer to long options.
    """
    values = [ll / max(1, n) for ll, n in zip(loglik, lengths)] if lengths else loglik
    best = max(range(len(values)), key=lambda i: values[i])
    return float(LETTERS[best] == correct.upper())


def normalize(text: str) -> str:
    """SQuAD-style normalisation: lower case, no punctuation, no articles, single spaces."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def score_short(answer: str, references: list[str]) -> float | None:
    """1.0 if the normalised answer equals, or its first line starts with, a normalised reference."""
    if not answer.strip():
        return None
    first = normalize(answer.strip().splitlines()[0])
    refs = [normalize(r) for r in references if r.strip()]
    return float(any(first == r or first.startswith(r + " ") for r in refs))


JUDGE_RUBRIC = (
    "You are grading an answer against a reference.\n"
    "Question: {question}\nReference answer: {reference}\nAnswer to grade: {answer}\n"
    "Give a score from 0 (wrong) to 10 (fully correct and complete). Reply exactly as "
    "'Score: N'.\nScore:"
)


@dataclass
class JudgeVerdict:
    score: float | None
    raw: str


def parse_judge(text: str) -> JudgeVerdict:
    """A judge's 'Score: N' (0-10) as a score in [0, 1]; None when there is no number."""
    match = re.search(r"(?:score\s*:?\s*)?(\d+(?:\.\d+)?)\s*(?:/\s*10)?", text, flags=re.IGNORECASE)
    if not match:
        return JudgeVerdict(None, text)
    value = float(match.group(1))
    if value > 10:
        return JudgeVerdict(None, text)
    return JudgeVerdict(value / 10.0, text)
