"""`leeroo-local fit` and `leeroo-local outcomes`, through the typer app and the console entry point."""

from __future__ import annotations

import json

import pytest
from outcome_folder import CATALOG_COLUMNS, random_scores, write_folder
from typer.testing import CliRunner

from leeroo_local.cli import app, main
from leeroo_local.errors import BudgetTooSmall, DataError
from leeroo_local.universe import load_universe

runner = CliRunner()


def fit_json(*args):
    result = runner.invoke(app, ["fit", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_fit_json_has_the_documented_shape():
    out = fit_json("--vram", "24GB")
    assert {"experts", "total_memory_bytes", "score", "best_single"} <= set(out)
    assert out["total_memory_bytes"] <= 24 * 10**9
    assert out["total_memory_bytes"] == sum(e["memory_bytes"] for e in out["experts"])
    for e in out["experts"]:
        assert {"id", "quant", "memory_bytes", "gain", "data_column"} <= set(e)
    assert {"id", "quant", "memory_bytes", "score"} <= set(out["best_single"])
    assert out["objective"] == "routed" and out["score"] == out["routed_score"]
    assert out["oracle_score"] >= out["routed_score"] >= out["best_single"]["score"]
    assert out["recommend"] in ("universe", "single") and out["noise"] >= 0
    assert out["predictions"]["source"] == "shipped"
    assert out["mode"] == "resident" and out["swap_share"] is None and out["saved"] is None
    skipped = {s["id"]: s["reason"] for s in out["skipped"]}
    assert {"gemma-3-270m", "gemma-3-270m-q4_0"} <= set(skipped)
    assert "--base" in skipped["yi-6b"] and "--base" in skipped["codegemma-7b"]
    # both shipped sources by default, each with what the universe does there
    assert [s["name"] for s in out["sources"]] == ["mmlu-pro", "llmrouter"]
    assert all(s["routed_score"] and s["best_single"] for s in out["sources"])


def test_fit_data_keeps_one_source_and_base_lets_base_models_join():
    mixed = fit_json("--vram", "24GB", "--data", "llmrouter")
    assert mixed["sources"] == [] and mixed["n_questions"] == 4439
    assert "mixed-task" in mixed["data"]
    assert {e["id"] for e in mixed["experts"]} <= {"qwen2.5-7b-instruct", "gemma-2-9b-it",
                                                   "llama-3.1-8b-instruct",
                                                   "mistral-7b-instruct-v0.3", "llama3-chatqa-1.5-8b"}
    based = fit_json("--vram", "24GB", "--data", "mmlu-pro", "--base")
    assert not any("--base" in s["reason"] for s in based["skipped"])
    text = runner.invoke(app, ["fit", "--vram", "24GB"], env={"COLUMNS": "160"}).output
    assert "on mmlu-pro (9607 questions): routed" in text and "on llmrouter (4439 questions)" in text
    bad = runner.invoke(app, ["fit", "--vram", "24GB", "--data", "nowhere-at-all"])
    assert isinstance(bad.exception, DataError)


def test_fit_table_shows_experts_budget_rule_and_skipped_ones():
    result = runner.invoke(app, ["fit", "--vram", "8GB", "--ram", "16GB"], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    out = fit_json("--vram", "8GB", "--ram", "16GB")
    for e in out["experts"]:
        assert e["id"] in result.output and e["quant"] in result.output
    assert "VRAM + RAM" in result.output
    assert f"Expected accuracy, routed: {100 * out['routed_score']:.2f}%" in result.output
    assert f"Oracle S(U): {100 * out['oracle_score']:.2f}%" in result.output
    assert f"{100 * out['best_single']['score']:.2f}%" in result.output
    assert "Best single expert that fits" in result.output and "Recommended:" in result.output
    assert "gemma-3-270m" in result.output and "Skipped" in result.output


def test_fit_swap_reports_the_share_of_swaps():
    out = fit_json("--ram", "16GB", "--swap", "--max-experts", "3", "--disk", "30GB")
    assert out["mode"] == "swap" and 0 < out["swap_share"] < 1
    assert len(out["experts"]) <= 3 and out["total_disk_bytes"] <= 30 * 10**9
    text = runner.invoke(app, ["fit", "--ram", "16GB", "--swap"]).output
    assert "Expected swaps" in text


def test_fit_save_writes_the_universe():
    out = fit_json("--ram", "12GB", "--save")
    universe = load_universe()
    assert out["saved"] and universe.origin == "fit"
    assert [(m.expert, m.quant) for m in universe.members] == [
        (e["id"], e["quant"]) for e in out["experts"]]
    assert universe.budget["ram_bytes"] == 12 * 10**9


def test_too_small_a_budget_exits_3_with_an_explanation(capsys):
    result = runner.invoke(app, ["fit", "--ram", "1GB"])
    assert isinstance(result.exception, BudgetTooSmall)
    with pytest.raises(SystemExit) as info:
        main(["fit", "--ram", "1GB"])
    assert info.value.code == 3
    err = capsys.readouterr().err
    assert "no expert fits" in err and "needs" in err and "--ctx" in err


def test_objective_and_min_share_options():
    oracle = fit_json("--vram", "24GB", "--objective", "oracle")
    routed = fit_json("--vram", "24GB")
    assert oracle["objective"] == "oracle" and oracle["score"] == oracle["oracle_score"]
    assert oracle["oracle_score"] >= routed["oracle_score"]
    assert routed["routed_score"] >= oracle["routed_score"]  # no guarantee: the shipped data's
    assert oracle["min_share"] == 0.0 and routed["min_share"] == 0.02
    loose = fit_json("--vram", "24GB", "--min-share", "0")
    assert loose["dropped"] == [] and loose["min_share"] == 0.0
    strict = fit_json("--vram", "24GB", "--min-share", "30")
    assert len(strict["experts"]) == 1 or min(e["share"] for e in strict["experts"]) >= 0.3
    assert runner.invoke(app, ["fit", "--vram", "24GB", "--objective", "best"]).exit_code == 2


def test_usage_errors():
    assert runner.invoke(app, ["fit"]).exit_code == 2  # no budget
    assert runner.invoke(app, ["fit", "--vram", "lots"]).exit_code == 2
    both = runner.invoke(app, ["fit", "--ram", "8GB", "--data", ".", "--from-store"])
    assert both.exit_code == 2


def test_data_folder_and_store_round_trip(tmp_path):
    folder = write_folder(tmp_path / "mine", random_scores(60, 4, seed=9), list(CATALOG_COLUMNS))
    from_folder = fit_json("--ram", "16GB", "--data", str(folder))
    assert from_folder["n_questions"] == 60
    assert {e["data_column"] for e in from_folder["experts"]} <= set(CATALOG_COLUMNS)

    empty = runner.invoke(app, ["fit", "--ram", "16GB", "--from-store"])
    assert isinstance(empty.exception, DataError)
    imported = runner.invoke(app, ["outcomes", "import", str(folder), "--source", "mine", "--json"])
    assert imported.exit_code == 0, imported.output
    assert json.loads(imported.output)["outcomes"] == 240
    listing = runner.invoke(app, ["outcomes", "list"])
    assert "mine: 240 outcomes, 60 questions" in listing.output
    from_store = fit_json("--ram", "16GB", "--from-store")
    assert from_store["data"] == "evaluation store"
    assert from_store["experts"] == from_folder["experts"]
    assert from_store["score"] == pytest.approx(from_folder["score"])
