"""Scoring self-play answers (leeroo_local.scoring) and parsing questions, on hand-written cases:
correct, wrong, unparseable."""

import random

import pytest

from leeroo_local.scoring import (
    extract_choice, mc_prompt, normalize, parse_judge, score_choice, score_loglikelihood,
    score_short,
)
from leeroo_local.selfplay.sources import DatasetSource, parse_generated


@pytest.mark.parametrize("text,letter", [
    ("Let's think step by step... The answer is (C).", "C"),
    ("the answer is D", "D"),
    ("Answer: B", "B"),
    ("B. because it is", "B"),
    ("(A)", "A"),
    ("I would pick (E) here", "E"),
])
def test_extracts_the_committed_letter(text, letter):
    assert extract_choice(text) == letter


@pytest.mark.parametrize("text", ["I don't know", "", "Both are fine", "The answer is (Z)"])
def test_unparseable_answers_give_none(text):
    assert extract_choice(text) is None
    assert score_choice(text, "A") is None


def test_letters_beyond_the_options_are_ignored():
    assert extract_choice("The answer is (F)", n_options=4) is None


def test_score_choice_right_and_wrong():
    assert score_choice("The answer is (C)", "C") == 1.0
    assert score_choice("The answer is (C)", "b") == 0.0


def test_loglikelihood_scoring_picks_the_most_likely_option():
    assert score_loglikelihood([-5.0, -1.0, -3.0], "B") == 1.0
    assert score_loglikelihood([-5.0, -1.0, -3.0], "A") == 0.0


def test_mc_prompt_letters_options():
    text = mc_prompt("2+2?", ["3", "4"])
    assert text.splitlines()[-3:] == ["A. 3", "B. 4", "Answer:"]


@pytest.mark.parametrize("answer,refs,score", [
    ("Paris", ["paris"], 1.0),
    ("The Paris.", ["Paris"], 1.0),
    ("paris is the capital", ["Paris"], 1.0),
    ("Lyon", ["Paris"], 0.0),
    ("   ", ["Paris"], None),
])
def test_short_answers(answer, refs, score):
    assert score_short(answer, refs) == score


def test_normalize():
    assert normalize("  The  Eiffel-Tower! ") == "eiffeltower"


@pytest.mark.parametrize("text,score", [("Score: 7", 0.7), ("10/10", 1.0), ("score 0", 0.0),
                                        ("no idea", None), ("Score: 42", None)])
def test_judge_parsing(text, score):
    assert parse_judge(text).score == score


def test_generated_questions_are_validated():
    good = 'Sure! {"question": "What is 2 + 3 in base 10?", "options": ["4", "5", "6", "7"], "answer": "b"}'
    assert parse_generated(good) == {"question": "What is 2 + 3 in base 10?",
                                     "options": ["4", "5", "6", "7"], "answer": "B"}
    for bad in ["no json here", '{"question": "short", "options": ["a","b"], "answer": "A"}',
                '{"question": "What is 2 + 3 in base 10?", "options": ["4"], "answer": "A"}',
                '{"question": "What is 2 + 3 in base 10?", "options": ["4", "4"], "answer": "A"}',
                '{"question": "What is 2 + 3 in base 10?", "options": ["4", "5"], "answer": "C"}',
                '{"question": "What is 2 + 3 in base 10?", "options": ["4", "5"], "answer": "A"']:
        assert parse_generated(bad) is None


def test_dataset_source_draws_without_repeats():
    from leeroo_local.store.outcomes import default_data_dir

    source = DatasetSource(default_data_dir() / "questions.jsonl.gz")
    rng = random.Random(0)
    first = source.draw(5, rng)
    second = source.draw(5, rng, exclude={q.id for q in first})
    assert len(first) == 5 and not {q.id for q in first} & {q.id for q in second}
    assert all(q.options and q.answer in "ABCDEFGHIJ" for q in first)
