"""The real starter: Gemma 3 270M Q4_K_M quantized to a smaller type, loaded and measured."""

from __future__ import annotations

import pytest

from leeroo_local.backends.base import Sampling
from leeroo_local.backends.llama_cpp import LlamaCppModel
from leeroo_local.catalog import load_catalog
from leeroo_local.errors import QuantizationError
from leeroo_local.quant.evaluate import evaluate
from leeroo_local.quant.make import make_quant


@pytest.mark.gemma
def test_starter_to_q3_k_s_is_smaller_loads_and_measures(gemma_path, tmp_path):
    catalog = load_catalog()
    with pytest.raises(QuantizationError, match="640 wide, not a multiple of Q3_K's 256"):
        make_quant(catalog, str(gemma_path), "Q3_K_S", out=tmp_path / "x.gguf", register=False,
                   allow_requantize=True, embeddings="same")
    made = make_quant(catalog, str(gemma_path), "Q3_K_S", out=tmp_path / "g.Q3_K_S.gguf",
                      register=False, allow_requantize=True, embeddings="Q4_0")
    assert made.source_type == "Q4_K_M" and made.type == "Q3_K_S"
    assert made.size_bytes < 0.8 * gemma_path.stat().st_size
    model = LlamaCppModel(made.path, n_ctx=256, n_threads=1)
    try:
        last = list(model.complete("The capital of France is", Sampling(max_tokens=4, temperature=0)))[-1]
    finally:
        model.close()
    assert last.completion_tokens >= 1
    r = evaluate(catalog, str(gemma_path), [str(made.path)], tokens=512, questions=2, threads=1)[0]
    assert 1 < r.ppl_reference < r.ppl_candidate < 1000
    assert 0 < r.kl_mean < 5 and 0 < r.top1_agreement < 1 and r.tokens_scored == 255
    assert r.mc_questions == 2 and 0 <= r.mc_agreement <= 1
