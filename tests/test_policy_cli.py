"""`leeroo-local policy train|route|eval` offline on small folders in the shared format."""

import gzip
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from outcome_folder import topic_matrix, write_folder
from leeroo_local.cli import app, main
from leeroo_local.store import open_db
from leeroo_local.store.evaluations import import_folder


@pytest.fixture
def folders(tmp_path):
    scores, columns, texts, _ = topic_matrix(n=300, seed=3)
    train = write_folder(tmp_path / "train", scores[:240], columns, texts=texts[:240],
                         costs=[8.0, 8.0, 2.0])
    test = write_folder(tmp_path / "test", scores[240:], columns,
                        question_ids=[f"t{i}" for i in range(60)], texts=texts[240:],
                        costs=[8.0, 8.0, 2.0])
    return train, test


def _train(train, out, *extra):
    result = CliRunner().invoke(app, ["policy", "train", "--data", str(train), "--out", str(out),
                                      *extra])
    assert result.exit_code == 0, result.output
    return result


def test_train_route_eval_end_to_end(folders, tmp_path):
    train, test = folders
    out = tmp_path / "pol"
    result = _train(train, out, "--json")
    report = json.loads(result.output)
    assert report["experts"] == ["mathy", "lawyer", "generalist"] and report["questions"] == 240
    assert (out / "policy.onnx").stat().st_size > 0

    result = CliRunner().invoke(app, ["policy", "route", "--policy", str(out), "--questions",
                                      str(test / "questions.jsonl.gz")])
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in result.output.splitlines()]
    assert len(lines) == 60 and set(lines[0]) == {"id", "expert", "scores"}
    assert set(lines[0]["scores"]) == {"mathy", "lawyer", "generalist"}
    with gzip.open(test / "questions.jsonl.gz", "rt") as fh:
        texts = {json.loads(x)["id"]: json.loads(x)["question"] for x in fh}
    math_routes = [x["expert"] for x in lines if "integral" in texts[x["id"]] or "matrix" in texts[x["id"]]]
    assert math_routes.count("mathy") > len(math_routes) / 2

    result = CliRunner().invoke(app, ["policy", "eval", "--policy", str(out), "--data", str(test)])
    assert result.exit_code == 0, result.output
    rep = json.loads(result.output)
    for key in ("policy", "best_single", "oracle"):
        assert {"accuracy", "mean_cost"} <= set(rep[key])
    assert rep["policy"]["accuracy"] > rep["best_single"]["accuracy"]
    assert rep["oracle"]["accuracy"] >= rep["policy"]["accuracy"]
    assert len(rep["curve"]) > 10 and rep["aiq"] > rep["aiq_single_experts"]
    assert rep["cost_to_match_best_single"] is not None
    assert "AIQ" in rep["aiq_definition"]


def test_route_keeps_a_hard_mean_cost_budget(folders, tmp_path):
    train, test = folders
    _train(train, tmp_path / "pol")
    result = CliRunner().invoke(app, ["policy", "route", "--policy", str(tmp_path / "pol"),
                                      "--questions", str(test / "questions.jsonl.gz"),
                                      "--max-mean-cost", "4"])
    assert result.exit_code == 0, result.output
    costs = {"mathy": 8.0, "lawyer": 8.0, "generalist": 2.0}
    chosen = [costs[json.loads(x)["expert"]] for x in result.output.splitlines()]
    assert np.mean(chosen) <= 4.0 and 8.0 in chosen


def test_an_impossible_budget_is_a_clear_error(folders, tmp_path, capsys):
    train, test = folders
    _train(train, tmp_path / "pol")
    with pytest.raises(SystemExit) as exit_info:
        main(["policy", "route", "--policy", str(tmp_path / "pol"), "--questions",
              str(test / "questions.jsonl.gz"), "--max-mean-cost", "1"])
    assert exit_info.value.code == 2
    assert "below the cheapest expert's cost 2" in capsys.readouterr().err


def test_train_from_the_evaluation_store(folders, tmp_path):
    train, _ = folders
    import_folder(open_db(), train, source="topics")
    result = CliRunner().invoke(app, ["policy", "train", "--store", "topics", "--out",
                                      str(tmp_path / "pol"), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["questions"] == 240
    # the store keeps no experts.csv: costs are unknown and said so
    assert any("no cost known" in w for w in report["warnings"])


def test_catalog_names_map_data_columns_to_catalog_ids(tmp_path):
    scores, _, texts, _ = topic_matrix(n=120, seed=4)
    cols = ["Meta-Llama-3_1-8B-Instruct", "mathstral-7B", "not-in-catalog"]
    folder = write_folder(tmp_path / "cat", scores, cols, texts=texts)
    result = CliRunner().invoke(app, ["policy", "train", "--data", str(folder), "--names", "catalog",
                                      "--out", str(tmp_path / "pol"), "--json"])
    assert result.exit_code == 0, result.output
    labels = json.loads((tmp_path / "pol" / "policy.json").read_text())
    assert labels["columns"] == ["Meta-Llama-3_1-8B-Instruct", "mathstral-7B"]
    assert labels["experts"] == ["llama-3.1-8b-instruct", "mathstral-7b-v0.1"]


def test_bad_arguments_exit_with_a_message(folders, tmp_path, capsys):
    train, _ = folders
    with pytest.raises(SystemExit) as exit_info:
        main(["policy", "train", "--out", str(tmp_path / "p")])
    assert exit_info.value.code == 2 and "exactly one of --data" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["policy", "eval", "--policy", str(tmp_path), "--data", str(train)])
    assert exit_info.value.code == 2 and "not a policy folder" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["policy", "train", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "p")])
    assert exit_info.value.code == 2 and "not a folder" in capsys.readouterr().err


def test_shipped_starter_outcomes_are_imported_into_the_store_on_first_use(tmp_path):
    from leeroo_local.store.evaluations import ensure_source, list_sources

    db = open_db()
    summary = ensure_source(db, "starter-mmlu-pro")
    assert summary.outcomes == 800 and summary.experts == 2
    assert ensure_source(db, "starter-mmlu-pro") is None  # already there: nothing re-imported
    assert ensure_source(db, "not-shipped") is None
    assert [r["source"] for r in list_sources(db)] == ["starter-mmlu-pro"]
