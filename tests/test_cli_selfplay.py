"""`leeroo-local selfplay` and `selfplay --onboard` through the typer app, on tiny experts; the
stored outcomes feed `fit --from-store`."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from helpers import install_tiny_universe, tiny_expert_toml
from leeroo_local import paths
from leeroo_local.cli import app, main
from leeroo_local.store import open_db
from selfplay_helpers import write_questions

runner = CliRunner()


@pytest.fixture
def tiny_env(tiny_dir, tmp_path, monkeypatch):
    install_tiny_universe(tiny_dir, n=2, n_ctx=256)
    with (paths.config_dir() / "models.toml").open("a") as fh:
        fh.write(tiny_expert_toml("tiny-3", tiny_dir, "tiny-3.gguf"))  # in the catalog, not the universe
    for key, value in (("N_THREADS", "1"), ("RAM_BUDGET", "256MB"), ("KEEP_ALIVE_S", "120")):
        monkeypatch.setenv(f"LEEROO_{key}", value)
    return write_questions(tmp_path / "questions.jsonl", n=60)


def test_selfplay_rounds_table_json_and_onboarding(tiny_env):
    args = ["selfplay", "--questions", "6", "--validation", "4", "--source", str(tiny_env)]
    result = runner.invoke(app, [*args, "--rounds", "2"])
    assert result.exit_code == 0, result.output
    for word in ("round", "signal", "val acc", "Round 1:", "Round 2:"):
        assert word in result.stdout
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    (third,) = json.loads(result.stdout)
    assert third["number"] == 3 and third["questions"] == 6 and third["scored"] == 12
    assert third["chosen_by"] == {"all": 12} and third["retrain"]["action"] == "skipped"
    db = open_db()
    assert db.execute("SELECT COUNT(*) FROM outcomes WHERE round BETWEEN 1 AND 3").fetchone()[0] == 36

    # the outcomes are what `fit --from-store` chooses from (experts matched by catalog id)
    fit = runner.invoke(app, ["fit", "--from-store", "--ram", "1GB", "--ctx", "256", "--json"])
    assert fit.exit_code == 0, fit.output
    chosen = {e["id"]: e for e in json.loads(fit.stdout)["experts"]}
    assert set(chosen) <= {"tiny-1", "tiny-2"} and chosen
    assert all(e["quality_basis"] == "outcomes" for e in chosen.values())

    # ... and what `policy train --store` trains on (22 questions: validation and 3 rounds)
    policy = runner.invoke(app, ["policy", "train", "--store", "all", "--names", "catalog",
                                 "--out", str(tiny_env.parent / "p"), "--json"])
    assert policy.exit_code == 0, policy.output
    trained = json.loads(policy.stdout)
    assert trained["questions"] == 22 and sorted(trained["experts"]) == ["tiny-1", "tiny-2"]

    onboard = runner.invoke(app, ["selfplay", "--onboard", "tiny-3", "--questions", "10",
                                  "--json"])
    assert onboard.exit_code == 0, onboard.output
    report = json.loads(onboard.stdout)
    assert report["expert"] == "tiny-3" and report["questions"] == 10
    assert report["universe"] == ["tiny-1@F32", "tiny-2@F32"]
    assert report["join"] == (report["options"][0]["gain"] > 0)
    rows = list(db.query("SELECT * FROM outcomes WHERE expert = 'tiny-3'"))
    assert len(rows) == 10 and {r["chosen_by"] for r in rows} == {"onboard"}
    assert {r["source"] for r in rows} == {"selfplay/onboard"} and {r["round"] for r in rows} == {None}
    again = runner.invoke(app, ["selfplay", "--onboard", "tiny-3", "--questions", "10"])
    assert again.exit_code == 0, again.output
    assert "Verdict:" in again.stdout and "F32" in again.stdout
    # the second run reused the stored outcomes instead of running them again
    assert db.execute("SELECT COUNT(*) FROM outcomes WHERE expert = 'tiny-3'").fetchone()[0] == 10


@pytest.mark.parametrize("args,message", [
    (["--evaluator", "vibes"], "use one of loglik, extract, judge"),
    (["--judge", "tiny-1"], "--judge needs --evaluator judge"),
    (["--source", "/nonexistent.jsonl"], "no such file"),
])
def test_bad_flags_are_usage_errors(tiny_env, args, message):
    result = runner.invoke(app, ["selfplay", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output


@pytest.mark.parametrize("args,message", [
    (["--generator", "nobody"], "unknown expert 'nobody'"),
    (["--onboard", "tiny-1"], "tiny-1 is a member of the universe already"),
])
def test_bad_experts_are_clear_errors_and_change_nothing(tiny_env, args, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(["selfplay", *args])
    assert info.value.code == 2
    assert message in capsys.readouterr().err
    assert not list(open_db().query("SELECT * FROM selfplay_rounds"))
