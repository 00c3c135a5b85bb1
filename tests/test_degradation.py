"""The quantization degradation table: its stated formula, its order, lookups and overrides."""

from __future__ import annotations

import math

import pytest

from leeroo_local.degradation import FACTORS, PPL_DELTA, DegradationModel, default_model

K_QUANT_LADDER = ["Q2_K", "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q4_K_S", "Q4_K_M", "Q5_K_S", "Q5_K_M",
                  "Q6_K", "Q8_0", "F16"]


def test_published_types_follow_the_documented_formula():
    for quant, delta in PPL_DELTA.items():
        assert FACTORS[quant] == math.floor((1 - 0.005 - 0.08 * delta) * 1000) / 1000, quant


def test_more_bits_never_score_lower():
    model = default_model()
    factors = [model.factor(q) for q in K_QUANT_LADDER]
    assert factors == sorted(factors)
    assert factors[-1] == 1.0
    assert model.factor("Q8_0") > 0.99 > model.factor("Q3_K_M") > model.factor("Q2_K")


def test_lookup_is_case_insensitive_and_knows_aliases_and_bases():
    model = default_model()
    assert model.factor("q4_k_m") == model.factor("Q4_K") == FACTORS["Q4_K_M"]
    assert model.lookup("Q4_K_M").basis == "measured ppl (llama.cpp)"
    assert model.lookup("IQ4_XS").basis == "assumption"
    assert model.lookup("BF16").factor == 1.0


def test_unknown_types_get_the_most_pessimistic_factor_of_their_width():
    model = default_model()
    odd = model.lookup("IQ3_WEIRD")
    assert odd.basis.startswith("assumption")
    assert odd.factor <= min(v for k, v in FACTORS.items() if k.lstrip("I").startswith("Q3"))
    assert model.factor("NOT_A_QUANT") == min(FACTORS.values())


def test_calibrated_factors_override_the_table():
    model = DegradationModel({"q4_k_m": 0.99}, basis="calibrated")
    assert model.lookup("Q4_K_M").factor == 0.99
    assert model.lookup("Q4_K_M").basis == "calibrated"
    assert model.factor("Q3_K_M") == FACTORS["Q3_K_M"]
    with pytest.raises(ValueError):
        DegradationModel({"Q4_0": 1.5})
