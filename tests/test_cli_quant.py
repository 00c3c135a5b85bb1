"""`leeroo-local quant` and `quant eval` through the console entry point, on a tiny expert."""

from __future__ import annotations

import json

import pytest
from tiny_gguf import write_tiny_llama
from typer.testing import CliRunner

from leeroo_local.catalog import load_user_catalog
from leeroo_local.cli import app, main
from leeroo_local.degradation import FACTORS, PRIOR_QUESTIONS
from leeroo_local.fit.plan import FitBudget, build_candidates
from leeroo_local.store.outcomes import load_matrix
from leeroo_local.store import open_db
from leeroo_local.store.quant_measurements import degradation_model, list_measurements
from outcome_folder import random_scores, write_folder
from quant_helpers import write_user_expert

runner = CliRunner()


@pytest.fixture(scope="module")
def tiny_f32(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cliq")
    return write_tiny_llama(folder / "tiny.gguf", seed=5, n_embd=128, n_ff=256, n_ctx_train=1024)


def run_main(capsys, *args) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_:
        main(list(args))
        raise SystemExit(0)
    out = capsys.readouterr()
    return exit_.value.code, out.out, out.err


def test_quant_makes_registers_measures_and_feeds_the_fit(tiny_f32, tmp_path, capsys):
    write_user_expert("tiny-c", tiny_f32, column="tiny-c-col")
    code, out, err = run_main(capsys, "quant", "tiny-c", "--to", "Q8_0")
    assert code == 0, err
    assert "Q8_0" in out and "of the F32 source" in out and "registered as tiny-c Q8_0" in out
    made = load_user_catalog().get("tiny-c").quant("Q8_0")
    assert made.size_basis == "exact" and made.path

    code, out, err = run_main(capsys, "quant", "eval", "tiny-c", "tiny-c@Q8_0", "--json",
                              "--tokens", "512", "--questions", "4", "--threads", "1")
    assert code == 0, err
    result = json.loads(out)
    assert result["candidate"]["expert"] == "tiny-c" and result["candidate"]["quant"] == "Q8_0"
    assert result["reference"]["quant"] == "F32" and result["tokens_scored"] == 255
    stored = list_measurements(open_db())
    assert [r["id"] for r in stored] == [result["id"]]
    assert stored[0]["candidate_sha256"] == made.sha256 == result["candidate"]["sha256"]
    assert stored[0]["kl_mean"] == pytest.approx(result["kl_mean"])

    # the fit's quality for (tiny-c, Q8_0) now comes from the measurement
    folder = write_folder(tmp_path / "data", random_scores(30, 1, seed=1), ["tiny-c-col"])
    cs = build_candidates(load_user_catalog(), load_matrix(folder), FitBudget(ram_bytes=10**9, n_ctx=512),
                          degradation_model(open_db()))
    q8 = next(c for c in cs.candidates if (c.expert, c.quant) == ("tiny-c", "Q8_0"))
    n, agreed = result["mc_questions"], result["mc_agreed"]
    assert q8.basis_kind == "quant eval"
    assert q8.factor == pytest.approx((agreed + PRIOR_QUESTIONS * FACTORS["Q8_0"]) / (n + PRIOR_QUESTIONS))
    code, out, err = run_main(capsys, "fit", "--ram", "1GB", "--ctx", "512", "--data", str(folder), "--json")
    assert code == 0, err
    assert {m["quality_basis"] for m in json.loads(out)["experts"]} <= {"quant eval", "unquantized"}


def test_help_shows_both_forms():
    group = runner.invoke(app, ["quant", "--help"], env={"COLUMNS": "120"})
    assert group.exit_code == 0 and "SOURCE --to TYPE" in group.output and "eval" in group.output
    make = runner.invoke(app, ["quant", "some-expert", "--help"], env={"COLUMNS": "120"})
    assert make.exit_code == 0 and "--allow-requantize" in make.output


def test_quant_eval_prints_a_table(tiny_f32, tmp_path):
    q4 = tmp_path / "q4.gguf"
    made = runner.invoke(app, ["quant", str(tiny_f32), "--to", "Q4_0", "--out", str(q4),
                               "--no-register"])
    assert made.exit_code == 0, made.output
    result = runner.invoke(app, ["quant", "eval", str(tiny_f32), str(q4), "--tokens", "512",
                                 "--questions", "2", "--threads", "1"], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    for words in ("perplexity", "MC accuracy", "KL(ref || cand)", "top-1 agreement",
                  "MC agreement", "q4.gguf", "stored as measurement 1"):
        assert words in result.output


def test_a_path_is_matched_to_its_expert_and_clear_errors_exit_2(tiny_f32, tmp_path, capsys):
    write_user_expert("tiny-e", tiny_f32)
    code, out, err = run_main(capsys, "quant", str(tiny_f32), "--to", "Q8_0", "--out",
                              str(tmp_path / "e8.gguf"))
    assert code == 0 and "registered as tiny-e Q8_0" in out, err
    code, _, err = run_main(capsys, "quant", "tiny-e", "--to", "IQ1_S")
    assert code == 2 and "importance matrix" in err
    code, _, err = run_main(capsys, "quant", "tiny-e", "--to", "Q7_Z")
    assert code == 2 and "unknown quantization 'Q7_Z'; offered: F16, BF16, Q8_0" in err
    stray = tmp_path / "stray.gguf"
    stray.write_bytes(tiny_f32.read_bytes())
    code, _, err = run_main(capsys, "quant", str(stray), "--to", "Q8_0")
    assert code == 2 and "--expert ID" in err
    other = write_tiny_llama(tmp_path / "other.gguf", seed=1)  # 64 wide: another model
    code, _, err = run_main(capsys, "quant", "eval", "tiny-e", str(other), "--tokens", "512",
                            "--questions", "0")
    assert code == 2 and "not a quantization of the same model" in err
    code, _, err = run_main(capsys, "quant", "eval", "tiny-e", "tiny-e@Q8_0", "--tokens", "100")
    assert code == 2 and "less than one 512-token chunk" in err
    assert not list_measurements(open_db())
