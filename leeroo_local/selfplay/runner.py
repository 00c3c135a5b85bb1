"""Running questions on experts and scoring them: the part of self-play that touches the runtime."""

from __future__ import annotations

from ..backends.base import Sampling
from ..service import Result, Service
from .evaluators import (
    JUDGE_RUBRIC, mc_prompt, parse_judge, score_choice, score_loglikelihood, score_short,
)
from .sources import Question

EVALUATORS = ("loglik", "extract", "judge")


def evaluate(service: Service, expert: str, question: Question, evaluator: str = "loglik",
             judge: str | None = None, max_tokens: int = 128, seed: int = 0) -> float | None:
    """Score `expert` on `question` with the named evaluator; None when unscorable."""
    if evaluator not in EVALUATORS:
        raise ValueError(f"unknown evaluator {evaluator!r}; use one of {EVALUATORS}")
    if evaluator == "loglik":
        if not question.options:
            raise ValueError("log-likelihood scoring needs a multiple-choice question")
        conts = [" " + opt for opt in question.options]
        ll = service.loglikelihoods(expert, mc_prompt(question.text, question.options), conts)
        return score_loglikelihood(ll, question.answer, [len(c) for c in conts])
    prompt = mc_prompt(question.text, question.options) if question.options else question.text
    answer = _answer(service, expert, prompt, max_tokens, seed)
    if evaluator == "extract":
        if question.options:
            return score_choice(answer, question.answer, len(question.options))
        return score_short(answer, [question.answer])
    verdict = _answer(service, judge or expert, JUDGE_RUBRIC.format(
        question=prompt, reference=question.answer, answer=answer), 8, seed)
    return parse_judge(verdict).score


def _answer(service: Service, expert: str, prompt: str, max_tokens: int, seed: int) -> str:
    sampling = Sampling(max_tokens=max_tokens, temperature=0.0, seed=seed)
    for event in service.chat([{"role": "user", "content": prompt}], expert, sampling):
        if isinstance(event, Result):
            return event.answer
    return ""
