"""Making and measuring quantizations on tiny real GGUF experts: F32 -> Q8_0 -> Q4_0."""

from __future__ import annotations

import math

import pytest
from tiny_gguf import write_tiny_llama

from leeroo_local.backends.base import Sampling
from leeroo_local.backends.llama_cpp import LlamaCppModel
from leeroo_local.catalog import load_catalog, load_user_catalog
from leeroo_local.errors import QuantizationError, UnknownExpert, UnknownQuant
from leeroo_local.gguf_info import read_gguf
from leeroo_local.locate import local_path
from leeroo_local.quant.evaluate import evaluate
from leeroo_local.paths import sha256_file
from leeroo_local.quant.make import make_quant
from leeroo_local.quant.types import file_precision
from quant_helpers import write_user_expert

# 128-wide rows: divisible by 32 (Q8_0, Q4_0 blocks); K-quants fall back for them (not by 256).
SHAPE = dict(n_embd=128, n_ff=256, n_ctx_train=1024)


@pytest.fixture(scope="module")
def ladder(tmp_path_factory):
    """F32 -> Q8_0 (from F32) and Q4_0 (from F32), made once as bare files (not registered)."""
    folder = tmp_path_factory.mktemp("ladder")
    f32 = write_tiny_llama(folder / "tiny.gguf", seed=7, **SHAPE)
    catalog = load_catalog()
    q8 = make_quant(catalog, str(f32), "Q8_0", out=folder / "tiny.Q8_0.gguf", register=False)
    q4 = make_quant(catalog, str(f32), "q4_0", out=folder / "tiny.Q4_0.gguf", register=False)
    return {"F32": f32, "Q8_0": q8.path, "Q4_0": q4.path, "made": (q8, q4)}


@pytest.fixture(scope="module")
def measured(ladder):
    """Both candidates measured in one pass of the reference."""
    results = evaluate(load_catalog(), str(ladder["F32"]), [str(ladder["Q8_0"]), str(ladder["Q4_0"])],
                       tokens=1024, questions=20, threads=1)
    return dict(zip(["Q8_0", "Q4_0"], results))


def test_sizes_shrink_and_headers_say_the_type(ladder):
    sizes = [ladder[t].stat().st_size for t in ("F32", "Q8_0", "Q4_0")]
    assert sizes[0] > 3 * sizes[1] and sizes[1] > 1.5 * sizes[2]
    for t in ("F32", "Q8_0", "Q4_0"):
        assert file_precision(read_gguf(ladder[t])) == t
    q8, q4 = ladder["made"]
    assert q8.size_bytes == sizes[1] and q8.sha256 == sha256_file(ladder["Q8_0"])
    assert q8.source_type == "F32" and q4.type == "Q4_0" and q8.registered is None


@pytest.mark.parametrize("quant", ["Q8_0", "Q4_0"])
def test_quantized_files_load_and_generate(ladder, quant):
    model = LlamaCppModel(ladder[quant], n_ctx=256, n_threads=1)
    try:
        chunks = list(model.complete("The river", Sampling(max_tokens=8, seed=1, temperature=0)))
    finally:
        model.close()
    assert chunks[-1].completion_tokens >= 1 and chunks[-1].prompt_tokens > 0


def test_eval_numbers_are_in_range_and_ordered(measured):
    q8, q4 = measured["Q8_0"], measured["Q4_0"]
    for r in (q8, q4):
        assert r.ppl_reference > 1 and r.ppl_candidate > 1
        assert 0 <= r.kl_mean <= r.kl_p99 <= r.kl_max and math.isfinite(r.kl_max)
        assert 0 <= r.top1_agreement <= 1 and r.tokens_scored == 2 * 255
        assert 0 < r.mc_questions <= 20 and 0 <= r.mc_agreement <= 1
        assert r.mc_agreed == round(r.mc_agreement * r.mc_questions)
        assert 0 <= r.mc_accuracy_reference <= 1 and 0 <= r.mc_accuracy_candidate <= 1
    assert q8.ppl_reference == q4.ppl_reference  # one reference pass for both
    assert q8.kl_mean < 0.01 < q4.kl_mean  # Q8_0 nearly lossless here, Q4_0 not
    assert q8.top1_agreement > q4.top1_agreement and q8.mc_agreement >= q4.mc_agreement
    assert q8.candidate.type == "Q8_0" and q8.reference.type == "F32"
    assert q8.candidate.size_bytes < q8.reference.size_bytes and len(q8.candidate.sha256) == 64


def test_a_model_measured_against_itself_loses_nothing(ladder):
    copy = ladder["Q8_0"].with_name("copy.gguf")
    copy.write_bytes(ladder["Q8_0"].read_bytes())
    r = evaluate(load_catalog(), str(ladder["Q8_0"]), [str(copy)], tokens=512, questions=3,
                 threads=1)[0]
    assert r.kl_max == pytest.approx(0, abs=1e-9) and r.top1_agreement == 1.0
    assert r.ppl_candidate == pytest.approx(r.ppl_reference) and r.mc_agreement == 1.0


def test_requantizing_needs_permission_and_never_goes_up(ladder, tmp_path):
    catalog = load_catalog()
    with pytest.raises(QuantizationError, match="--allow-requantize"):
        make_quant(catalog, str(ladder["Q8_0"]), "Q4_0", out=tmp_path / "r.gguf", register=False)
    assert not (tmp_path / "r.gguf").exists()
    with pytest.raises(QuantizationError, match="cannot bring back"):
        make_quant(catalog, str(ladder["Q4_0"]), "Q8_0", out=tmp_path / "u.gguf", register=False,
                   allow_requantize=True)
    made = make_quant(catalog, str(ladder["Q8_0"]), "Q4_0", out=tmp_path / "r.gguf",
                      register=False, allow_requantize=True)
    assert made.source_type == "Q8_0" and made.size_bytes < ladder["Q8_0"].stat().st_size


def test_impossible_conversions_are_clear_errors(ladder, tmp_path):
    catalog, f32 = load_catalog(), str(ladder["F32"])
    with pytest.raises(UnknownQuant, match="offered: F16, BF16, Q8_0") as err:
        make_quant(catalog, f32, "Q9_X", out=tmp_path / "x.gguf", register=False)
    assert "IQ2_XS" not in str(err.value)
    with pytest.raises(QuantizationError, match="importance matrix"):
        make_quant(catalog, f32, "IQ2_XS", out=tmp_path / "x.gguf", register=False)
    with pytest.raises(QuantizationError, match="already Q8_0"):
        make_quant(catalog, str(ladder["Q8_0"]), "Q8_0", out=tmp_path / "x.gguf", register=False,
                   allow_requantize=True)
    with pytest.raises(QuantizationError, match="--force"):
        make_quant(catalog, f32, "Q8_0", out=ladder["Q8_0"], register=False)
    with pytest.raises(QuantizationError, match="--expert ID"):
        make_quant(catalog, f32, "Q8_0", out=tmp_path / "x.gguf")
    with pytest.raises(UnknownExpert, match="gemma-3-270m"):
        make_quant(catalog, "no-such-expert", "Q8_0")
    assert not list(tmp_path.iterdir())


def test_eval_refuses_files_of_different_models(ladder, tmp_path):
    other = write_tiny_llama(tmp_path / "other.gguf", seed=1)  # 64 wide: other shapes
    with pytest.raises(QuantizationError, match="not a quantization of the same model"):
        evaluate(load_catalog(), str(ladder["F32"]), [str(other)], tokens=512, questions=0)
    with pytest.raises(QuantizationError, match="reference itself"):
        evaluate(load_catalog(), str(ladder["F32"]), [str(ladder["F32"])], tokens=512)


def test_made_quant_is_registered_with_its_expert(ladder, tmp_path):
    write_user_expert("tiny-q", ladder["F32"])
    made = make_quant(load_user_catalog(), "tiny-q", "Q8_0")
    assert made.expert == "tiny-q" and made.registered.name == "quants.toml"
    expert = load_user_catalog().get("tiny-q")
    q = expert.quant("Q8_0")
    assert q.size_basis == "exact" and q.size_bytes == made.size_bytes == made.path.stat().st_size
    assert q.sha256 == made.sha256 and q.path == str(made.path)
    assert local_path(expert, q) == made.path
    assert [x.type for x in expert.quants] == ["F32", "Q8_0"]
    # the same type again: refused without --force, replaced (not duplicated) with it
    with pytest.raises(QuantizationError, match="--force"):
        make_quant(load_user_catalog(), "tiny-q", "Q8_0")
    make_quant(load_user_catalog(), "tiny-q@F32", "Q8_0", force=True)
    assert [x.type for x in load_user_catalog().get("tiny-q").quants] == ["F32", "Q8_0"]
    made4 = make_quant(load_user_catalog(), str(ladder["F32"]), "Q4_0", expert="tiny-q",
                       out=tmp_path / "q4.gguf")
    assert made4.expert == "tiny-q"
    assert load_user_catalog().get("tiny-q").quant("Q4_0").path == str(tmp_path / "q4.gguf")


def test_registering_a_type_the_catalog_already_offers_is_refused(tmp_path):
    gguf = write_tiny_llama(tmp_path / "t.gguf", seed=2, **SHAPE)
    write_user_expert("tiny-r", gguf, extra_quant=("Q4_0", "t.gguf"))
    with pytest.raises(QuantizationError, match="already offers Q4_0"):
        make_quant(load_user_catalog(), "tiny-r@F32", "Q4_0", out=tmp_path / "x.gguf")
    assert not (tmp_path / "x.gguf").exists()
