"""`--expert auto` routes with the ONNX policy on tiny real llama.cpp experts: the route follows
the policy, a swap penalty sends a close call to the loaded expert, an expert without outcome
data is flagged, and the shipped policies serve the catalog and starter universes."""

import json
import logging

import numpy as np
import pytest
from typer.testing import CliRunner

from helpers import install_tiny_universe
from outcome_folder import topic_matrix, write_folder
from leeroo_local import paths
from leeroo_local.backends.base import Sampling
from leeroo_local.catalog import load_catalog
from leeroo_local.cli import app
from leeroo_local.store.outcomes import load_matrix
from leeroo_local.policy import load_policy
from leeroo_local.policy.shipped import resolve_policy, shipped_policies, shipped_policy
from leeroo_local.policy.train import train_policy
from leeroo_local.runtime.service import Result, Service
from leeroo_local.settings import load_settings
from leeroo_local.universe import Member, Universe, starter_universe

MATH = "solve the integral and the derivative of this polynomial equation"
LAW = "is the plaintiff owed damages under the contract statute in court"
BIO = "which enzyme binds the protein in the cell membrane"


@pytest.fixture(scope="module")
def tiny_policy(tmp_path_factory):
    """A policy for tiny-1 (math), tiny-2 (law), tiny-3 (weaker); on bio questions tiny-1 and
    tiny-2 are equally good, a close call."""
    scores, _, texts, topics = topic_matrix(n=300, seed=5)
    bio = np.array([t == "bio" for t in topics])
    rng = np.random.default_rng(6)
    scores[bio] = np.round(np.clip(np.c_[np.full(bio.sum(), 0.6), np.full(bio.sum(), 0.6),
                                         np.full(bio.sum(), 0.2)]
                                   + rng.normal(0, 0.05, (bio.sum(), 3)), 0, 1), 3)
    folder = write_folder(tmp_path_factory.mktemp("data") / "tiny", scores,
                          ["tiny-1", "tiny-2", "tiny-3"], texts=texts)
    out = tmp_path_factory.mktemp("policy") / "tiny"
    train_policy(load_matrix(folder), out)
    partial = tmp_path_factory.mktemp("policy") / "partial"
    train_policy(load_matrix(folder).select(["tiny-1", "tiny-2"]), partial)
    return out, partial


def _service(tiny_dir, policy, **settings):
    install_tiny_universe(tiny_dir, n_ctx=256)
    return Service(load_settings(n_threads=1, ram_budget="64MB", policy=str(policy), **settings),
                   client="test")


def _answer(svc, expert):
    events = list(svc.complete("hi", expert, Sampling(max_tokens=2, seed=1)))
    assert isinstance(events[-1], Result)


def test_auto_route_follows_the_policy(tiny_dir, tiny_policy):
    svc = _service(tiny_dir, tiny_policy[0], keep_alive_s=60)
    try:
        policy = load_policy(tiny_policy[0])
        for prompt, expected in ((MATH, "tiny-1"), (LAW, "tiny-2")):
            route = svc.route(prompt)
            assert route.expert == expected and route.quant == "F32"
            assert set(route.scores) == {"tiny-1", "tiny-2", "tiny-3"}
            direct = dict(zip(policy.experts, policy.scores(prompt)))
            assert route.scores == pytest.approx(direct, abs=1e-4)
            assert route.reason.startswith(f"policy tiny: {expected} predicted")
            assert route.route_s > 0
    finally:
        svc.close()


def test_the_first_route_pays_the_policy_load_unless_it_was_warmed(tiny_dir, tiny_policy):
    cold = _service(tiny_dir, tiny_policy[0])
    first, second = cold.route("integral of x"), cold.route("integral of x")
    assert first.policy_load_s > 0 and second.policy_load_s == 0
    assert first.route_s >= first.policy_load_s
    warmed = _service(tiny_dir, tiny_policy[0])
    warmed.warm_router().join(timeout=60)
    route = warmed.route("integral of x")
    assert route.policy_load_s == 0 and route.expert == first.expert


@pytest.mark.slow
def test_swap_penalty_sends_a_close_call_to_the_loaded_expert(tiny_dir, tiny_policy):
    svc = _service(tiny_dir, tiny_policy[0], keep_alive_s=60, swap_penalty=1.0)
    try:
        cold = svc.route(BIO)
        ranked = sorted(cold.scores, key=cold.scores.get, reverse=True)
        best, runner_up = ranked[0], ranked[1]
        assert {best, runner_up} == {"tiny-1", "tiny-2"}
        assert cold.scores[best] - cold.scores[runner_up] < 0.15  # a close call
        assert cold.expert == best  # nothing loaded: the policy's choice
        _answer(svc, runner_up)
        warm = svc.route(BIO)
        assert warm.expert == runner_up
        assert f"{best} ({cold.scores[best]:.2f}) is not loaded" in warm.reason
        assert f"loaded {runner_up}" in warm.reason
        assert svc.route(MATH if runner_up == "tiny-2" else LAW).expert == best  # not close: no flip
    finally:
        svc.close()


@pytest.mark.slow
def test_without_a_swap_penalty_the_loaded_expert_does_not_matter(tiny_dir, tiny_policy):
    svc = _service(tiny_dir, tiny_policy[0], keep_alive_s=60, swap_penalty=0.0)
    try:
        first = svc.route(BIO)
        other = next(e for e in ("tiny-1", "tiny-2") if e != first.expert)
        _answer(svc, other)
        assert svc.route(BIO).expert == first.expert
    finally:
        svc.close()


def test_an_expert_without_outcome_data_is_flagged_and_scored_as_the_mean(tiny_dir, tiny_policy, caplog):
    svc = _service(tiny_dir, tiny_policy[1])
    try:
        with caplog.at_level(logging.WARNING):
            route = svc.route(BIO)
        assert "no outcome data for tiny-3" in caplog.text
        assert route.scores["tiny-3"] == pytest.approx((route.scores["tiny-1"] + route.scores["tiny-2"]) / 2, abs=1e-3)
        assert route.expert in ("tiny-1", "tiny-2")
    finally:
        svc.close()


def test_no_policy_for_the_universe_routes_to_the_first_member(tiny_dir, caplog):
    install_tiny_universe(tiny_dir, n_ctx=256)
    svc = Service(load_settings(n_threads=1), client="test")  # no shipped policy knows tiny-*
    with caplog.at_level(logging.WARNING):
        route = svc.route(MATH)
    assert route.expert == "tiny-1" and "no routing policy" in route.reason
    assert "no routing policy knows any of tiny-1" in caplog.text


@pytest.mark.slow
def test_run_expert_auto_routes_with_the_onnx_policy(tiny_dir, tiny_policy):
    install_tiny_universe(tiny_dir, n_ctx=256)
    (paths.config_dir() / "config.toml").write_text(f'policy = "{tiny_policy[0]}"\n')
    result = CliRunner().invoke(app, ["run", LAW, "--json", "-n", "2", "--expert", "auto"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["expert"] == "tiny-2" and data["route"]["reason"].startswith("policy tiny")
    assert set(data["route"]["scores"]) == {"tiny-1", "tiny-2", "tiny-3"}


def test_a_session_budget_excludes_what_it_cannot_afford(tiny_dir, tiny_policy):
    install_tiny_universe(tiny_dir, n_ctx=256)
    svc = Service(load_settings(policy=str(tiny_policy[0]), max_mean_cost=1e-9), client="test")
    with pytest.raises(Exception, match="below the cheapest"):
        svc.route(MATH)


def test_shipped_policies_cover_the_catalog_and_the_starter_universe():
    shipped = shipped_policies()
    assert {"catalog", "starter"} <= set(shipped)
    catalog = load_catalog()
    assert shipped_policy(starter_universe().ids()) == shipped["starter"]
    for name, folder in shipped.items():
        size = sum(f.stat().st_size for f in folder.iterdir())
        assert size <= 25e6, (name, size)
        for expert in load_policy(folder).experts:
            catalog.get(expert)  # every output is a catalog expert
    assert resolve_policy("catalog", []) == shipped["catalog"]


def test_the_catalog_policy_routes_a_catalog_universe(tiny_dir):
    catalog = load_catalog()
    universe = Universe(members=[Member(expert="llama-3.1-8b-instruct", quant="Q4_K_M"),
                                 Member(expert="mathstral-7b-v0.1", quant="Q4_K_M"),
                                 Member(expert="phi-3-mini-4k-instruct", quant="Q4_K_M")],
                        origin="user")
    svc = Service(load_settings(), catalog, universe, client="test")
    route = svc.route("Find the eigenvalues of the matrix [[2, 1], [1, 2]] and the determinant.")
    assert set(route.scores) == {m.expert for m in universe.members}
    assert route.reason.startswith("policy catalog")
    assert svc.router().bindings[0].factor == pytest.approx(0.98)  # Q4_K_M of full-precision data


def test_the_starter_policy_scores_each_starter_member_at_its_measured_quantization():
    svc = Service(load_settings(), load_catalog(), starter_universe(), client="test")
    route = svc.route("Which of the following is a prime number? A. 4 B. 6 C. 7 D. 9")
    assert set(route.scores) == {"gemma-3-270m", "gemma-3-270m-q4_0"}
    assert route.reason.startswith("policy starter")
    assert [b.factor for b in svc.router().bindings] == [1.0, 1.0]  # measured, not degraded


def test_a_policy_setting_that_names_nothing_is_a_clear_error(tiny_dir):
    from leeroo_local.errors import ConfigError

    install_tiny_universe(tiny_dir, n_ctx=256)
    svc = Service(load_settings(policy="no-such-policy"), client="test")
    with pytest.raises(ConfigError, match="not a policy folder nor a shipped policy"):
        svc.route(MATH)


def test_a_route_names_the_kind_of_work_the_policy_recognised(tiny_dir, tmp_path):
    """Users ask why a prompt went where it went: a policy that learned its data's tasks says
    which one it took the prompt for, in the route and its reason (the request log keeps it)."""
    from test_policy_kinds import kinds_matrix

    texts, _, Y = kinds_matrix(1200, seed=3)  # write_folder labels even rows math, odd law
    folder = write_folder(tmp_path / "data", Y.astype(np.float32), ["tiny-1", "tiny-2"],
                          texts=texts)
    train_policy(load_matrix(folder), tmp_path / "pol")
    svc = _service(tiny_dir, tmp_path / "pol")
    try:
        math = svc.route("Compute 5 + 6 and give the result as a number.")
        trivia = svc.route("who sang the first song")
        assert (math.task, trivia.task) == ("math", "law")
        assert (math.expert, trivia.expert) == ("tiny-1", "tiny-2")
        assert math.reason.endswith("recognised as math")
        assert svc.route("hi", expert="tiny-3").task is None  # named: no policy ran
    finally:
        svc.close()
