"""The self-play loop on tiny real experts with fixed seeds: questions and outcomes stored with
provenance, resumption after an interruption, epsilon exploration, the retrained policy."""

from collections import Counter

import pytest

from helpers import install_tiny_universe, tiny_expert_toml
from leeroo_local.catalog import load_catalog
from leeroo_local.errors import DataError
from leeroo_local.selfplay.config import SelfPlayConfig
from leeroo_local.selfplay.loop import SelfPlay
from leeroo_local.selfplay.retrain import PolicyStep, user_policy_dir
from leeroo_local.runtime.service import Service
from leeroo_local.settings import load_settings
from leeroo_local.store import open_db
from leeroo_local.store import rounds as store
from leeroo_local.universe import Member, Universe, starter_universe
from selfplay_helpers import write_questions


@pytest.fixture(scope="module")
def shared_service(tiny_dir, tmp_path_factory):
    """One service (its expert workers started once) for the module: its catalog and universe
    are objects, so each test's private home does not change them."""
    folder = tmp_path_factory.mktemp("catalog")
    (folder / "models.toml").write_text(
        "".join(tiny_expert_toml(f"tiny-{i}", tiny_dir, f"tiny-{i}.gguf") for i in (1, 2, 3)))
    catalog = load_catalog(extra=[folder / "models.toml"])
    universe = Universe(members=[Member(expert=f"tiny-{i}", quant="F32") for i in (1, 2, 3)],
                        n_ctx=256, origin="user")
    service = Service(load_settings(n_threads=1, ram_budget="256MB", keep_alive_s=600),
                      catalog, universe, client="test")
    yield service
    service.close()


@pytest.fixture
def env(shared_service, tiny_dir, tmp_path):
    install_tiny_universe(tiny_dir, n_ctx=256)  # the same universe, for services built from config
    qfile = write_questions(tmp_path / "questions.jsonl", n=90)
    return shared_service, open_db(), qfile


def outcomes(db, where="1=1", params=()):
    return [dict(r) for r in db.query(f"SELECT * FROM outcomes WHERE {where} ORDER BY id", params)]


def test_rounds_store_questions_and_outcomes_with_provenance(env):
    service, db, qfile = env
    cfg = SelfPlayConfig(questions=5, validation=4, source=str(qfile), seed=1)
    reports = SelfPlay(service, db, cfg).run(2)
    assert [r.number for r in reports] == [1, 2]
    validation = outcomes(db, "source = 'selfplay/validation'")
    assert len(validation) == 4 * 3 and {o["round"] for o in validation} == {0}
    played = outcomes(db, "source LIKE 'selfplay/dataset:%'")
    assert len(played) == 2 * 5 * 3  # every question to all three experts (<= threshold)
    for o in played:
        assert o["expert"] in {"tiny-1", "tiny-2", "tiny-3"} and o["quant"] == "F32"
        assert o["evaluator"] == "loglik" and o["chosen_by"] == "all"
        assert o["round"] in (1, 2) and o["generator"] is None and o["judge"] is None
        assert o["score"] in (0.0, 1.0)
    ids = [{o["question_id"] for o in played if o["round"] == n} for n in (1, 2)]
    assert not ids[0] & ids[1]  # a later round draws new questions
    assert not (ids[0] | ids[1]) & {o["question_id"] for o in validation}
    stored = {r["id"]: r for r in db["questions"].rows}
    assert all(stored[q]["text"].startswith("What is") for q in ids[0] | ids[1])
    r = reports[0]
    assert (r.questions, r.scored, r.unscorable, r.failed) == (5, 15, 0, 0)
    assert r.compared == 5 and r.signal_share == r.high_signal / 5
    assert r.retrain.action == "none" and r.seconds > 0 and r.energy_j >= 0
    spreads = list(db.query("SELECT signal FROM selfplay_questions q JOIN selfplay_rounds r "
                            "ON r.id = q.round_id WHERE r.kind = 'round' AND r.number = 1"))
    assert sum(s["signal"] for s in spreads) == r.high_signal
    # the same seed in a fresh store plans the same questions
    db2 = open_db(":memory:")
    SelfPlay(service, db2, cfg).run(1)
    assert {o["question_id"] for o in outcomes(db2, "round = 1")} == ids[0]


class Stop(Exception):
    pass


def test_an_interrupted_round_resumes_without_losing_or_repeating_outcomes(env):
    service, db, qfile = env
    cfg = SelfPlayConfig(questions=6, validation=3, source=str(qfile))
    seen = []

    def stop_after_7(event):
        if event.round == 1 and event.task is not None:
            seen.append(event.task.id)
            if len(seen) == 7:
                raise Stop

    with pytest.raises(Stop):
        SelfPlay(service, db, cfg, on_event=stop_after_7).run(2)
    row = store.unfinished(db)
    assert row["number"] == 1 and row["status"] == "evaluating"
    assert len(outcomes(db, "round = 1")) == 7  # each outcome was written as it was scored
    assert len(store.tasks(db, row["id"], store.PENDING)) == 18 - 7

    # a rerun with other flags finishes round 1 with its own settings, then runs round 2
    reports = SelfPlay(service, db, cfg.model_copy(update={"questions": 2})).run(2)
    assert [(r.number, r.resumed, r.questions) for r in reports] == [(1, True, 6), (2, False, 2)]
    round1 = outcomes(db, "round = 1")
    assert len(round1) == 18
    assert len({(o["question_id"], o["expert"]) for o in round1}) == 18  # no duplicate
    assert len(outcomes(db, "round = 0")) == 9  # the validation set was not run again
    assert store.unfinished(db) is None


def test_epsilon_greedy_with_more_experts_than_the_threshold(env):
    service, db, qfile = env
    cfg = SelfPlayConfig(questions=20, validation=0, source=str(qfile), threshold=2,
                         epsilon=0.5, seed=3)
    report = SelfPlay(service, db, cfg).run(1)[0]
    rows = outcomes(db)
    by_question = {}
    for o in rows:
        by_question.setdefault(o["question_id"], []).append(o)
    for picks in by_question.values():
        prior = [o["expert"] for o in picks if o["chosen_by"] == "prior"]
        assert prior == ["tiny-1"]  # no policy: the universe's first member
        assert all(o["chosen_by"] in ("prior", "explore") for o in picks)
    explored = sum(o["chosen_by"] == "explore" for o in rows)
    assert report.chosen_by == dict(Counter(o["chosen_by"] for o in rows))
    assert report.chosen_by["prior"] == 20
    assert 20 - 4 * 3.2 < explored < 20 + 4 * 3.2  # 40 draws at 0.5: mean 20, sd 3.2
    # the same seed plans the same exploration
    db2 = open_db(":memory:")
    SelfPlay(service, db2, cfg).run(1)
    again = [(o["question_id"], o["expert"], o["chosen_by"]) for o in outcomes(db2)]
    assert again == [(o["question_id"], o["expert"], o["chosen_by"]) for o in rows]
    # epsilon 0: only the top expert answers
    db3 = open_db(":memory:")
    zero = SelfPlay(service, db3, cfg.model_copy(update={"epsilon": 0.0})).run(1)[0]
    assert zero.chosen_by == {"prior": 20} and zero.compared == 0 and zero.signal_share is None


def test_retrained_policy_is_used_by_the_service_and_never_falls_on_validation(env, tiny_dir):
    service, db, qfile = env
    step = PolicyStep(service.settings, service.universe, service.catalog)
    cfg = SelfPlayConfig(questions=20, validation=6, source=str(qfile), keep="all")
    loop = SelfPlay(service, db, cfg, policy=step)
    loop.ensure_validation()
    # make routing to the first member the worst possible, so the first candidate must win
    vid = store.get_round(db, "validation", 0)["id"]
    db.execute("UPDATE selfplay_tasks SET score = CASE expert WHEN 'tiny-1' THEN 0 ELSE 1 END "
               "WHERE round_id = ?", [vid])
    db.conn.commit()
    reports = loop.run(2)
    first = reports[0].retrain
    assert first.action == "accepted" and first.previous_accuracy == 0.0
    assert first.training_questions == 20 and first.policy_path == str(user_policy_dir())
    assert (user_policy_dir() / "policy.json").is_file()
    second = reports[1].retrain
    assert second.previous_accuracy == first.validation_accuracy
    assert second.validation_accuracy >= first.validation_accuracy
    assert second.training_questions == 40
    if second.candidate_accuracy < second.previous_accuracy:
        assert second.action == "kept"
    else:
        assert second.action == "accepted" and second.validation_accuracy == second.candidate_accuracy
    rows = list(db.query("SELECT validation_accuracy, policy_action FROM selfplay_rounds "
                         "WHERE kind = 'round' ORDER BY number"))
    assert [r["policy_action"] for r in rows] == [first.action, second.action]

    # the service routes with the user's policy from now on
    fresh = Service(load_settings(n_threads=1, ram_budget="256MB"), client="test")
    route = fresh.route("What is 3 + 4?")
    assert "policy selfplay" in route.reason and set(route.scores) == {"tiny-1", "tiny-2", "tiny-3"}

    # with more experts than the threshold, the policy's top expert answers each question
    eps = SelfPlay(service, db, cfg.model_copy(update={"threshold": 2, "epsilon": 0.0,
                                                       "questions": 4}), policy=step)
    report = eps.run(1)[0]
    assert report.chosen_by == {"policy": 4}


def test_unscorable_answers_are_counted_and_not_stored(env):
    service, db, qfile = env
    cfg = SelfPlayConfig(questions=3, validation=0, source=str(qfile), evaluator="extract",
                         max_tokens=8)
    report = SelfPlay(service, db, cfg).run(1)[0]
    assert report.scored + report.unscorable + report.failed == 9
    assert len(outcomes(db)) == report.scored
    assert report.unscorable > 0  # random tiny experts rarely commit to a letter
    states = Counter(t.status for t in store.tasks(db, store.rounds(db)[0]["id"]))
    assert states["unscorable"] == report.unscorable and states["pending"] == 0


def test_a_generator_that_writes_nothing_valid_is_counted_and_stores_nothing(env, tiny_dir):
    _, db, _ = env
    install_tiny_universe(tiny_dir, n_ctx=512)  # room for the generator's prompt
    service = Service(load_settings(n_threads=1, ram_budget="256MB"), client="test")
    try:
        cfg = SelfPlayConfig(questions=2, validation=0, generator="tiny-1", max_tokens=40)
        with pytest.raises(DataError, match=r"tiny-1 wrote no valid question \(8 rejected\)$"):
            SelfPlay(service, db, cfg).run(1)
    finally:
        service.close()
    assert store.rounds(db) == [] and outcomes(db) == []


def test_shipped_outcomes_of_the_universe_are_imported_once_and_never_drawn(env):
    _, db, _ = env
    starter = Service(load_settings(), universe=starter_universe(), client="test")  # starts nothing
    loop = SelfPlay(starter, db, SelfPlayConfig())
    assert loop.import_shipped() == ["starter-mmlu-pro"]
    assert loop.import_shipped() == []
    shipped = {r[0] for r in db.execute("SELECT DISTINCT question_id FROM outcomes "
                                        "WHERE source = 'starter-mmlu-pro'")}
    assert len(shipped) == 400 and shipped <= loop._seen_ids(any_quant=True)
    tiny = SelfPlay(env[0], open_db(":memory:"), SelfPlayConfig())
    assert tiny.import_shipped() == []  # no shipped data names a tiny expert
