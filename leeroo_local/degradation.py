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

Measured quantizations (`leeroo-local quant eval`, rows of the store's quant_measurements) replace
the table where they exist. A measurement compares a candidate file with a reference file of the
same model on n MMLU-Pro questions: the candidate picks the reference's option on a share `a` of
them. The mapping to a factor is conservative: every changed pick counts as a correct answer lost
(at the reference's accuracy) and never as one gained, so relative to the reference

    f_rel = a        (were changed picks independent of correctness, the expected factor
                      would be a + (1 - a)(1 - acc)/((k - 1) acc), never below a)

and relative to full precision f_abs = f_rel x the reference's own factor (1.0 for F16/BF16/F32;
else its own measurement against an unquantized reference; else the table). A few dozen questions
make `a` noisy, so the estimate is shrunk toward the table, with the weight of N0 = 50 questions:

    f = (n * f_abs + N0 * f_table) / (n + N0)

That is the factor of that (expert, quantization). The same pooling over every measured expert of
a type (sum of their n) calibrates the type's factor for experts not measured themselves. KL
divergence, top-1 agreement and perplexity are stored and shown but do not enter the factor: the
fit's scores are multiple-choice accuracies, and how next-token changes turn into changed picks
differs by model. On the Gemma 3 270M starter, a base model near chance on MMLU-Pro (10% on 20
questions), picks are fragile: Q4_0 kept 64.5% of top-1 tokens but only 8 of 20 picks, so its
factor is 0.796 where the table says 0.957 (bench/quant_starter.py). That is the conservative
direction; an expert well above chance keeps its picks far more often.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
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
    basis: str  # "measured ppl (llama.cpp)", "assumption", "calibrated", "unquantized", ...
    kind: str = "table"  # table | unquantized | calibrated | quant eval: for short displays


class DegradationModel:
    """Quantization type -> multiplicative factor on full-precision scores; `pairs` hold the
    factors measured for one (expert, quantization), which win over the type's factor."""

    def __init__(self, factors: Mapping[str, float] | None = None, basis: str = "calibrated",
                 pairs: Mapping[tuple[str, str], Degradation] | None = None,
                 bases: Mapping[str, str] | None = None):
        self._override = {k.upper(): float(v) for k, v in (factors or {}).items()}
        self._override_basis = basis
        self._bases = {k.upper(): v for k, v in (bases or {}).items()}
        self._pairs = {(e, _name(q)): d for (e, q), d in (pairs or {}).items()}
        for k, v in [*self._override.items(), *((f"{e} {q}", d.factor) for (e, q), d in self._pairs.items())]:
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"factor for {k} must be in [0, 1], got {v}")

    def lookup(self, quant: str, expert: str | None = None) -> Degradation:
        """The factor for `quant` (case-insensitive) of `expert` (when given), with its basis."""
        name = _name(quant)
        if expert is not None and (expert, name) in self._pairs:
            return self._pairs[(expert, name)]
        if name in self._override:
            return Degradation(name, self._override[name],
                               self._bases.get(name, self._override_basis), "calibrated")
        return table_lookup(name)

    def factor(self, quant: str) -> float:
        return self.lookup(quant).factor


def _name(quant: str) -> str:
    return ALIASES.get(quant.upper(), quant.upper())


def table_lookup(quant: str) -> Degradation:
    """The table's factor for a type, ignoring any measurement."""
    name = _name(quant)
    if name in ("F32", "F16", "BF16"):
        return Degradation(name, 1.0, "unquantized", "unquantized")
    if name in FACTORS:
        basis = "measured ppl (llama.cpp)" if name in PPL_DELTA else "assumption"
        return Degradation(name, FACTORS[name], basis)
    match = _BITS.match(name)
    bits = int(match.group(1)) if match else 0
    factor = BY_BITS.get(bits, min(FACTORS.values()))
    return Degradation(name, factor, "assumption (unknown type)")


def default_model() -> DegradationModel:
    """The table above, uncalibrated."""
    return DegradationModel()


PRIOR_QUESTIONS = 50  # N0 above: how many questions the table's factor is worth


@dataclass(frozen=True)
class Agreement:
    """One measurement: a candidate's multiple-choice picks against a reference file's."""

    expert: str | None  # the candidate's expert, when known
    quant: str
    reference_quant: str
    questions: int
    agreed: int


def _shrunk(n: int, measured: float, prior: float) -> float:
    return (n * measured + PRIOR_QUESTIONS * prior) / (n + PRIOR_QUESTIONS)


def from_agreements(measurements: Sequence[Agreement]) -> DegradationModel:
    """The table calibrated by measurements (module doc): a factor per measured (expert, quant),
    and per type pooled over every measurement of it. Pass one measurement per file (the
    latest), latest first."""
    usable = [m for m in measurements if m.questions > 0]
    unquantized = {"F32", "F16", "BF16"}
    pairs: dict[tuple[str, str], Degradation] = {}

    def absolute(m: Agreement) -> float:
        ref = _name(m.reference_quant)
        if ref in unquantized:
            return m.agreed / m.questions
        base = pairs.get((m.expert, ref)) or table_lookup(ref)
        return min(1.0, m.agreed / m.questions * base.factor)

    # against an unquantized reference first: those factors are the references of the others;
    # of several measurements of one pair, the first (pass the latest first) is used
    for m in sorted(usable, key=lambda m: _name(m.reference_quant) not in unquantized):
        q = _name(m.quant)
        if m.expert and (m.expert, q) not in pairs:
            f = _shrunk(m.questions, absolute(m), table_lookup(q).factor)
            pairs[(m.expert, q)] = Degradation(
                q, f, f"quant eval: {m.agreed}/{m.questions} picks as {_name(m.reference_quant)}",
                "quant eval")
    pooled: dict[str, list[Agreement]] = {}
    for m in usable:
        pooled.setdefault(_name(m.quant), []).append(m)
    factors, bases = {}, {}
    for q, ms in pooled.items():
        n = sum(m.questions for m in ms)
        mean = sum(m.questions * absolute(m) for m in ms) / n
        factors[q] = _shrunk(n, mean, table_lookup(q).factor)
        bases[q] = f"calibrated by {len(ms)} quant eval(s), {n} questions"
    return DegradationModel(factors, pairs=pairs, bases=bases)
