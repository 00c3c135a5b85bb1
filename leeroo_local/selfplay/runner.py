"""Running questions on experts and scoring them: the part of self-play that touches the runtime."""

from __future__ import annotations

from dataclasses import dataclass

from ..backends.base import Sampling
from ..runtime.service import Result, Service
from ..scoring import (
    JUDGE_RUBRIC, mc_prompt, parse_judge, score_choice, score_loglikelihood, score_short,
)
from .config import EVALUATORS
from .sources import Question


@dataclass(frozen=True)
class Evaluation:
    """A score (None: unscorable) and what producing it cost."""

    score: float | None
    seconds: float
    energy_j: float
    energy_method: str
    answer: str = ""  # the expert's text (empty for log-likelihood scoring)


def check_evaluator(evaluator: str, question: Question | None = None) -> None:
    """ValueError for an unknown evaluator, or log-likelihood scoring of an open question."""
    if evaluator not in EVALUATORS:
        raise ValueError(f"unknown evaluator {evaluator!r}; use one of {EVALUATORS}")
    if question is not None and evaluator == "loglik" and not question.options:
        raise ValueError("log-likelihood scoring needs a multiple-choice question")


def evaluate(service: Service, expert: str, question: Question, evaluator: str = "loglik",
             judge: str | None = None, max_tokens: int = 128, seed: int = 0) -> float | None:
    """Score `expert` on `question` with the named evaluator; None when unscorable."""
    return evaluate_measured(service, expert, question, evaluator, judge, max_tokens, seed).score


def evaluate_measured(service: Service, expert: str, question: Question,
                      evaluator: str = "loglik", judge: str | None = None,
                      max_tokens: int = 128, seed: int = 0) -> Evaluation:
    """Score `expert` on `question`, with the seconds and joules it took (the judge's included)."""
    check_evaluator(evaluator, question)
    if evaluator == "loglik":
        conts = [" " + opt for opt in question.options]
        res = service.loglikelihoods_measured(expert, mc_prompt(question.text, question.options),
                                              conts)
        score = score_loglikelihood(res.values, question.answer, [len(c) for c in conts])
        return Evaluation(score, res.total_s, res.energy.joules, res.energy.method)
    prompt = mc_prompt(question.text, question.options) if question.options else question.text
    answer = _answer(service, expert, prompt, max_tokens, seed)
    if evaluator == "extract":
        if question.options:
            score = score_choice(answer.answer, question.answer, len(question.options))
        else:
            score = score_short(answer.answer, [question.answer])
        return Evaluation(score, answer.timings.total_s, answer.energy.joules,
                          answer.energy.method, answer.answer)
    verdict = _answer(service, judge or expert, JUDGE_RUBRIC.format(
        question=prompt, reference=question.answer, answer=answer.answer), 8, seed)
    method = ("measured" if {answer.energy.method, verdict.energy.method} == {"measured"}
              else "estimated")
    return Evaluation(parse_judge(verdict.answer).score,
                      answer.timings.total_s + verdict.timings.total_s,
                      answer.energy.joules + verdict.energy.joules, method, answer.answer)


def _answer(service: Service, expert: str, prompt: str, max_tokens: int, seed: int) -> Result:
    sampling = Sampling(max_tokens=max_tokens, temperature=0.0, seed=seed)
    for event in service.chat([{"role": "user", "content": prompt}], expert, sampling):
        if isinstance(event, Result):
            return event
    raise RuntimeError("the service ended a request without a result")  # pragma: no cover
