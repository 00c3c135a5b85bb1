"""Choosing experts per question (all, or epsilon-greedy) and the signal of a round: pure parts."""

import random

import pytest
from pydantic import ValidationError

from leeroo_local.selfplay import exploration, signal
from leeroo_local.selfplay.config import SelfPlayConfig

EXPERTS = [f"e{i}" for i in range(6)]


def test_few_experts_all_answer_every_question():
    picks = exploration.choose(EXPERTS[:4], random.Random(0), epsilon=0.0, threshold=4)
    assert [(p.expert, p.chosen_by) for p in picks] == [(e, "all") for e in EXPERTS[:4]]


def test_epsilon_greedy_keeps_the_policy_top_and_explores_the_rest_at_rate_epsilon():
    rng = random.Random(7)
    scores = {"e0": 0.1, "e1": 0.2, "e2": 0.9, "e3": 0.8, "e4": 0.3, "e5": 0.0}
    explored = 0
    n = 2000
    for _ in range(n):
        picks = exploration.choose(EXPERTS, rng, epsilon=0.2, scores=scores, top_k=2)
        top = [p.expert for p in picks if p.chosen_by == "policy"]
        assert top == ["e2", "e3"]  # the two highest predictions, in universe order
        others = [p for p in picks if p.chosen_by == "explore"]
        assert {p.expert for p in others} <= {"e0", "e1", "e4", "e5"}
        explored += len(others)
    expected, sd = n * 4 * 0.2, (n * 4 * 0.2 * 0.8) ** 0.5
    assert abs(explored - expected) < 4 * sd


def test_exploration_is_reproducible_and_bounded_by_epsilon():
    def plan(seed, eps):
        rng = random.Random(seed)
        return [[(p.expert, p.chosen_by) for p in exploration.choose(EXPERTS, rng, eps)]
                for _ in range(50)]

    assert plan(3, 0.3) == plan(3, 0.3)
    assert plan(3, 0.3) != plan(4, 0.3)
    assert all(row == [("e0", "prior")] for row in plan(3, 0.0))  # no policy: universe order
    assert all(len(row) == 6 for row in plan(3, 1.0))
    with pytest.raises(ValueError):
        exploration.choose(EXPERTS, random.Random(0), epsilon=1.5)


def test_signal_counts_only_questions_with_two_scores():
    cells = {"q1": {"a": 1.0, "b": 0.0}, "q2": {"a": 1.0, "b": 1.0}, "q3": {"a": 0.0},
             "q4": {}, "q5": {"a": 0.2, "b": 0.6, "c": 0.4}}
    summary, spreads = signal.summarize(cells)
    assert (summary.questions, summary.compared, summary.high) == (5, 3, 1)
    assert summary.share == pytest.approx(1 / 3)
    assert spreads["q3"] is None and spreads["q5"] == pytest.approx(0.4)
    assert signal.summarize({})[0].share is None


def test_config_refuses_a_judge_without_the_judge_evaluator_and_bad_epsilon():
    with pytest.raises(ValidationError, match="--judge needs --evaluator judge"):
        SelfPlayConfig(judge="x")
    with pytest.raises(ValidationError):
        SelfPlayConfig(epsilon=2.0)
    assert SelfPlayConfig(judge="x", evaluator="judge").judge == "x"
