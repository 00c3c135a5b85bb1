"""How much a quantization lowers an expert's scores, where no outcomes were measured for it.

The one place for this table: outcome data is measured at full precision (the MMLU-Pro outputs
come from the unquantized models), and `fit` multiplies those scores by the factor of the
quantization it considers. Measured outcomes of a quantization (columns `<expert>@<QUANT>` in
outcome data, rows with a quant in the evaluation store) always win over the table; a later
calibration can pass its own factors to `DegradationModel(factors=...)`.

Basis. The only per-type measurements llama.cpp publishes are the perplexity increases its
quantizer prints (tools/quantize/quantize.cpp, QUANT_OPTIONS: "+0.1754 ppl @ Llama-3-8B" for
Q4_K_M, ...), reproduced in PPL_DELTA below. Llama 3 is more sensitive to quantization than older
models (Huang et al., "How Good Are Low-bit Quantized LLaMA3 Models?", arXiv 2404.14047), so its
figures err on the safe side for the Llama 2 / Mistral-era experts of the catalog. The mapping to
accuracy is our assumption, meant to be conservative:

    factor = 1 - 0.005 - 0.08 * delta_ppl      (rounded down; 1.0 for F16/BF16/F32)

0.08 per perplexity point charges about half the relative perplexity increase (Llama-3-8B sits
near 6 on wikitext) as lost accuracy, and the flat 0.005 charges every quantization something.
That gives Q8_0 0.994, Q4_K_M 0.980, Q3_K_M 0.942, Q2_K 0.713: more loss than reports that 8-bit
recovers full MMLU accuracy and that 4-bit keeps chain-of-thought abilities while 2-bit loses
them (Liu et al., "Do Emergent Abilities Exist in Quantized LLMs", LREC-COLING 2024). Types
without a published figure (the IQ family) get a factor by bit width, marked as an assumption.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

# llama.cpp tools/quantize/quantize.cpp, QUANT_OPTIONS: perplexity increase over F16, Llama-3-8B.
PPL_DELTA: dict[str, float] = {
    "Q8_0": 0.0026, "Q6_K": 0.0217, "Q5_K_M": 0.0569, "Q5_K_S": 0.1049, "Q5_1": 0.1062,
    "Q5_0": 0.1316, "Q4_K_M": 0.1754, "Q4_K_S": 0.2689, "Q4_1": 0.4511, "Q4_0": 0.4685,
    "Q3_K_L": 0.5562, "Q3_K_M": 0.6569, "Q3_K_S": 1.6321, "Q2_K_S": 3.1836, "Q2_K": 3.5199,
}

# The table fit uses: 1 - 0.005 - 0.08 * PPL_DELTA, rounded down to 3 decimals; IQ types and
# the fallbacks are assumptions by bit width (between the k-quants of the same width).
FACTORS: dict[str, float] = {
    "F32": 1.0, "F16": 1.0, "BF16": 1.0,
    "Q8_0": 0.994, "Q6_K": 0.993, "Q5_K_M": 0.990, "Q5_K_S": 0.986, "Q5_1": 0.986,
    "Q5_0": 0.984, "Q4_K_M": 0.980, "Q4_K_S": 0.973, "Q4_1": 0.958, "Q4_0": 0.957,
    "Q3_K_L": 0.950, "Q3_K_M": 0.942, "Q3_K_S": 0.864, "Q2_K_S": 0.740, "Q2_K": 0.713,
    # assumptions (no published per-type figure)
    "IQ4_XS": 0.973, "IQ4_NL": 0.973, "IQ3_M": 0.930, "IQ3_S": 0.910, "IQ3_XS": 0.890,
    "IQ3_XXS": 0.860, "IQ2_M": 0.750, "IQ2_S": 0.720, "IQ2_XS": 0.680, "IQ2_XXS": 0.620,
    "IQ1_M": 0.450, "IQ1_S": 0.400,
}
ALIASES = {"Q3_K": "Q3_K_M", "Q4_K": "Q4_K_M", "Q5_K": "Q5_K_M"}
# Unknown types: the most pessimistic listed factor of the same bit width.
BY_BITS = {1: 0.40, 2: 0.62, 3: 0.86, 4: 0.957, 5: 0.984, 6: 0.993, 8: 0.995}
_BITS = re.compile(r"^I?Q(\d)")


@dataclass(frozen=True)
class Degradation:
    """The factor for one quantization type and where it comes from."""

    quant: str
    factor: float
    basis: str  # "measured ppl (llama.cpp)", "assumption", "calibrated", "unquantized"


class DegradationModel:
    """Quantization type -> multiplicative factor on full-precision scores."""

    def __init__(self, factors: Mapping[str, float] | None = None, basis: str = "calibrated"):
        self._override = {k.upper(): float(v) for k, v in (factors or {}).items()}
        self._override_basis = basis
        for k, v in self._override.items():
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"factor for {k} must be in [0, 1], got {v}")

    def lookup(self, quant: str) -> Degradation:
        """The factor for `quant` (case-insensitive), with its basis."""
        name = ALIASES.get(quant.upper(), quant.upper())
        if name in self._override:
            return Degradation(name, self._override[name], self._override_basis)
        if name in ("F32", "F16", "BF16"):
            return Degradation(name, 1.0, "unquantized")
        if name in FACTORS:
            basis = "measured ppl (llama.cpp)" if name in PPL_DELTA else "assumption"
            return Degradation(name, FACTORS[name], basis)
        match = _BITS.match(name)
        bits = int(match.group(1)) if match else 0
        factor = BY_BITS.get(bits, min(FACTORS.values()))
        return Degradation(name, factor, "assumption (unknown type)")

    def factor(self, quant: str) -> float:
        return self.lookup(quant).factor


def default_model() -> DegradationModel:
    """The table above, uncalibrated."""
    return DegradationModel()
