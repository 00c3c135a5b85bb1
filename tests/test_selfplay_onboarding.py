"""Onboarding verdicts on a synthetic store (hand-made outcomes, no inference), and the sampling
of stored questions a new expert is run on."""

import json
import random

import pytest

from leeroo_local import paths
from leeroo_local.catalog import load_user_catalog
from leeroo_local.errors import DataError
from leeroo_local.fit.plan import FitBudget, build_candidates
from leeroo_local.selfplay.onboarding import sample_questions, verdict
from leeroo_local.store import open_db
from leeroo_local.store.evaluations import Outcome, read_matrix, record_outcomes
from leeroo_local.universe import Member, Universe

ARCH = ('arch = { architecture = "llama", n_layers = 2, n_embd = 64, n_heads = 4, '
        'n_kv_heads = 2, head_dim = 16, n_vocab = 259, n_ctx_train = 512, params_b = 0.0002, '
        'active_params_b = 0.0002 }')


def _expert(eid: str, quants: list[tuple[str, int]]) -> str:
    q = ", ".join(f'{{ type = "{t}", file = "{eid}-{t}.gguf", size_bytes = {s}, '
                  f'size_basis = "exact" }}' for t, s in quants)
    return (f'\n[[experts]]\nid = "{eid}"\nname = "{eid}"\nlicense = "apache-2.0"\n'
            f'instruct = true\ndefault_quant = "{quants[0][0]}"\n'
            f'source = {{ kind = "local", folder = "/nowhere" }}\n{ARCH}\nquants = [{q}]\n')


N = 20
A = set(range(0, 10))     # a is right on questions 0-9
B = set(range(5, 15))     # b on 5-14: the universe {a, b} covers 0-14


@pytest.fixture
def world():
    (paths.config_dir() / "models.toml").write_text(
        _expert("a", [("F32", 1_000_000)]) + _expert("b", [("F32", 1_000_000)])
        + _expert("c", [("F32", 1_000_000), ("Q8_0", 300_000)]))
    catalog = load_user_catalog()
    universe = Universe(members=[Member(expert="a", quant="F32"), Member(expert="b", quant="F32")],
                        n_ctx=256, origin="user")
    db = open_db()
    db["questions"].insert_all([{"id": f"q{i}", "text": f"question {i}?", "source": "test",
                                 "options": json.dumps(["x", "y"])} for i in range(N)], pk="id")
    record_outcomes(db, [Outcome(f"q{i}", e, float(i in right), "test", "F32")
                         for e, right in (("a", A), ("b", B)) for i in range(N)])
    return catalog, universe, db


def _score_c(db, right: set[int]):
    record_outcomes(db, [Outcome(f"q{i}", "c", float(i in right), "onboard", "F32")
                         for i in range(N)])


def _memory(catalog, db, budget):
    cs = build_candidates(catalog, read_matrix(db), budget)
    return {(c.expert, c.quant): c.memory_bytes for c in cs.candidates}


def test_a_complementary_expert_joins_at_the_best_quantization_that_fits(world):
    catalog, universe, db = world
    _score_c(db, set(range(15, 20)))  # right exactly where the universe is wrong
    ids = [f"q{i}" for i in range(N)]
    big = FitBudget(ram_bytes=10**12, n_ctx=256, objective="oracle")
    report = verdict(catalog, universe, db, "c", "F32", ids, big)
    assert report.join and report.quant == "F32"
    assert report.universe_score == pytest.approx(15 / 20)
    assert report.unique_wins == 5 and report.single_score == pytest.approx(5 / 20)
    gains = {o.quant: o.gain for o in report.options}
    assert gains["F32"] == pytest.approx(5 / 20)
    assert gains["Q8_0"] < gains["F32"]  # scaled from the measured F32 by the degradation table
    assert "x0.994 of F32 measured" in next(o.quality for o in report.options if o.quant == "Q8_0")

    # a budget with room for the members and c's Q8_0 only: it joins at Q8_0
    mem = _memory(catalog, db, big)
    room = mem[("a", "F32")] + mem[("b", "F32")] + mem[("c", "Q8_0")]
    assert room < mem[("a", "F32")] + mem[("b", "F32")] + mem[("c", "F32")]
    tight = verdict(catalog, universe, db, "c", "F32", ids,
                    FitBudget(ram_bytes=room, n_ctx=256, objective="oracle"))
    assert tight.join and tight.quant == "Q8_0"
    assert {o.quant: o.fits for o in tight.options} == {"F32": False, "Q8_0": True}


def test_a_redundant_expert_does_not_join(world):
    catalog, universe, db = world
    _score_c(db, set(range(0, 12)))  # right only where a or b already is
    report = verdict(catalog, universe, db, "c", "F32", [f"q{i}" for i in range(N)],
                     FitBudget(ram_bytes=10**12, n_ctx=256, objective="oracle"))
    assert not report.join and report.quant is None and report.unique_wins == 0
    assert max(o.gain for o in report.options) == 0.0
    assert report.reason.startswith("do not join: adds +0.0 points")
    assert "S(U)" in report.reason


def test_without_room_beside_the_members_the_verdict_says_what_a_refit_would_do(world):
    catalog, universe, db = world
    _score_c(db, set(range(0, 5)) | set(range(10, 20)))  # beats b: covers all but 5-9
    ids = [f"q{i}" for i in range(N)]
    mem = _memory(catalog, db, FitBudget(ram_bytes=10**12, n_ctx=256))
    two = mem[("a", "F32")] + mem[("b", "F32")]  # only the current members fit
    report = verdict(catalog, universe, db, "c", "F32", ids,
                     FitBudget(ram_bytes=two, n_ctx=256, objective="oracle"))
    assert not report.join and not any(o.fits for o in report.options)
    assert report.refit is not None and any(m.startswith("c@") for m in report.refit)
    assert "refitting the universe would take it" in report.reason


def test_onboarding_samples_only_questions_every_member_was_scored_on(world):
    catalog, universe, db = world
    record_outcomes(db, [Outcome("extra", "a", 1.0, "test", "F32")])  # b never ran on it
    db["questions"].insert({"id": "extra", "text": "extra?", "options": "[\"x\"]"}, pk="id")
    ids = sample_questions(db, catalog, universe, 100, random.Random(0))
    assert sorted(ids) == sorted(f"q{i}" for i in range(N))
    assert len(sample_questions(db, catalog, universe, 5, random.Random(0))) == 5
    with pytest.raises(DataError, match="no sampled question"):
        verdict(catalog, universe, db, "c", "F32", [], FitBudget(ram_bytes=10**9, n_ctx=256))


TOPICS = ("integral derivative equation", "court statute contract", "cell protein enzyme")


def _topic_world(right_c, right_a=lambda i: i % 3 == 0):
    """120 questions that say their topic (i % 3): a is right where `right_a` says (the first
    topic), b on the second; c where `right_c` says."""
    (paths.config_dir() / "models.toml").write_text(
        _expert("a", [("F32", 1_000_000)]) + _expert("b", [("F32", 1_000_000)])
        + _expert("c", [("F32", 1_000_000)]))
    catalog = load_user_catalog()
    universe = Universe(members=[Member(expert="a", quant="F32"), Member(expert="b", quant="F32")],
                        n_ctx=256, origin="user")
    db = open_db()
    n = 120
    db["questions"].insert_all([{"id": f"t{i}", "text": f"{TOPICS[i % 3]} number {i}?",
                                 "source": "test", "options": json.dumps(["x", "y"])}
                                for i in range(n)], pk="id")
    record_outcomes(db, [Outcome(f"t{i}", e, float(ok(i)), "test", "F32") for i in range(n)
                         for e, ok in (("a", right_a), ("b", lambda i: i % 3 == 1),
                                       ("c", right_c))])
    return catalog, universe, db, [f"t{i}" for i in range(n)]


def test_routed_verdict_takes_an_expert_the_router_can_find():
    catalog, universe, db, ids = _topic_world(lambda i: i % 3 == 2)  # the third topic
    report = verdict(catalog, universe, db, "c", "F32", ids, FitBudget(ram_bytes=10**12, n_ctx=256))
    assert report.objective == "routed" and report.join
    assert report.options[0].gain > 0.25  # a third of the questions, routed to it
    assert "routed accuracy" in report.reason


def test_routed_verdict_refuses_unique_wins_the_router_cannot_find():
    """On the third topic a is right on two questions in three and c on the third one, which
    nothing in the text tells apart: the oracle gains from c, the router keeps sending that
    topic to a."""
    third = lambda i: i % 3 == 2  # noqa: E731
    catalog, universe, db, ids = _topic_world(
        lambda i: third(i) and (i // 3) % 3 == 0,
        right_a=lambda i: i % 3 == 0 or (third(i) and (i // 3) % 3 != 0))
    oracle = verdict(catalog, universe, db, "c", "F32", ids,
                     FitBudget(ram_bytes=10**12, n_ctx=256, objective="oracle"))
    assert oracle.join and oracle.unique_wins == 14
    routed = verdict(catalog, universe, db, "c", "F32", ids, FitBudget(ram_bytes=10**12, n_ctx=256))
    assert not routed.join and routed.options[0].gain <= 0
