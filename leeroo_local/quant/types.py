"""Which quantizations `leeroo-local quant` offers, and which conversions it refuses.

The offered types are llama.cpp's quantizer options that need nothing but the source file. Types
that llama.cpp only makes with an importance matrix (computed from calibration text, which this
project does not do) are refused with that reason, and so is any conversion that would add bits
back to an already quantized file: the precision is lost, the file would only grow.
"""

from __future__ import annotations

from collections import Counter

from ..errors import QuantizationError, UnknownQuant
from ..gguf_info import GGUFInfo, block_size, tensor_type_for

UNQUANTIZED = ("F32", "F16", "BF16")

# Mean bits per weight, for ordering and display: the Llama-3-8B file sizes llama.cpp's quantizer
# lists (tools/quantize/quantize.cpp, QUANT_OPTIONS, e.g. Q4_K_M " 4.58G") x 8 / 8.03 B
# parameters, and its own "bpw" figures for the IQ types.
NOMINAL_BPW: dict[str, float] = {
    "F32": 32.0, "F16": 16.0, "BF16": 16.0,
    "Q8_0": 7.93, "Q6_K": 6.12, "Q5_1": 5.63, "Q5_K_M": 5.31, "Q5_K_S": 5.19, "Q5_0": 5.19,
    "Q4_1": 4.76, "Q4_K_M": 4.56, "IQ4_NL": 4.50, "Q4_K_S": 4.35, "Q4_0": 4.32, "IQ4_XS": 4.25,
    "Q3_K_L": 4.01, "Q3_K_M": 3.72, "IQ3_M": 3.66, "IQ3_S": 3.44, "Q3_K_S": 3.40, "IQ3_XS": 3.30,
    "IQ3_XXS": 3.06, "Q2_K": 2.95, "Q2_K_S": 2.95, "IQ2_M": 2.70, "IQ2_S": 2.50, "IQ2_XS": 2.31,
    "IQ2_XXS": 2.06, "IQ1_M": 1.75, "IQ1_S": 1.56,
}
# llama.cpp refuses these without an importance matrix (src/llama-quant.cpp).
NEEDS_IMATRIX = frozenset({"IQ1_S", "IQ1_M", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ2_M", "Q2_K_S"})
ALIASES = {"Q3_K": "Q3_K_M", "Q4_K": "Q4_K_M", "Q5_K": "Q5_K_M", "ALL_F32": "F32"}


def normalize(name: str) -> str:
    """Upper case, llama.cpp's aliases resolved (Q4_K -> Q4_K_M), "MOSTLY_" dropped."""
    key = name.strip().upper().removeprefix("MOSTLY_")
    return ALIASES.get(key, key)


def offered(known: set[str] | None = None) -> list[str]:
    """Types `quant --to` accepts, most bits first; `known`: the names llama.cpp knows."""
    names = [t for t in NOMINAL_BPW if t not in NEEDS_IMATRIX and t != "F32"]
    if known is not None:
        names = [t for t in names if t in known]
    return sorted(names, key=lambda t: -NOMINAL_BPW[t])


def file_precision(info: GGUFInfo) -> str:
    """The quantization of a GGUF file: its header's general.file_type, else the type holding
    most bytes of its 2-D weights (a K-quant's mix then reads as its main block type)."""
    named = normalize(info.file_type)
    if named in NOMINAL_BPW:
        return named
    by_bytes: Counter[str] = Counter()
    for t in info.tensors:
        if len(t.shape) >= 2:
            by_bytes[normalize(t.type)] += t.n_bytes
    if not by_bytes:
        return named
    main = by_bytes.most_common(1)[0][0]
    return {"Q4_K": "Q4_K_M", "Q5_K": "Q5_K_M", "Q3_K": "Q3_K_M"}.get(main, main)


def check_conversion(source: str, target: str, *, allow_requantize: bool,
                     known: set[str] | None = None) -> str:
    """The normalised target type, or a clear error for a conversion that makes no sense."""
    to = normalize(target)
    choices = offered(known)
    if to in NEEDS_IMATRIX:
        raise QuantizationError(
            f"{to} needs an importance matrix (llama.cpp refuses it without one), which "
            f"leeroo-local does not compute; choose another type: {', '.join(choices)}")
    if to not in choices:
        raise UnknownQuant(f"unknown quantization {target!r}; offered: {', '.join(choices)}")
    src = normalize(source)
    if src == to:
        raise QuantizationError(f"the source is already {to}")
    if src not in UNQUANTIZED:
        src_bits = NOMINAL_BPW.get(src)
        if src_bits is not None and NOMINAL_BPW[to] > src_bits:
            raise QuantizationError(
                f"the source is {src} (~{src_bits:.1f} bits/weight): quantizing it to {to} "
                f"(~{NOMINAL_BPW[to]:.1f}) cannot bring back the precision it lost, the file "
                "would only grow; quantize from the F16/BF16/F32 file instead")
        if not allow_requantize:
            raise QuantizationError(
                f"the source is already quantized ({src}); requantizing adds the errors of "
                f"both steps. Quantize from an F16/BF16/F32 file, or pass --allow-requantize")
    return to


# Tensor types offered for the token embeddings, by block size (32: any width llama.cpp takes).
EMBEDDING_TYPES = ("F16", "BF16", "Q8_0", "Q6_K", "Q5_1", "Q5_0", "Q5_K", "Q4_1", "Q4_0", "IQ4_NL",
                   "Q4_K", "IQ4_XS", "Q3_K", "Q2_K")


def check_embeddings(info: GGUFInfo, target: str, embeddings: str | None) -> str | None:
    """The tensor type to force on the token embeddings (None: llama.cpp's own choice).

    `embeddings`: "same" (the target's own block type) or a tensor type. llama.cpp has no
    fallback for a forced embedding type: a row width that is not a multiple of the type's
    block would abort it, so that is refused here with the types that fit.
    """
    if not embeddings:
        return None
    wanted = tensor_type_for(target if embeddings.lower() == "same" else embeddings)
    if wanted is None or wanted not in EMBEDDING_TYPES:
        raise UnknownQuant(f"unknown embeddings type {embeddings!r}; use same or one of "
                           f"{', '.join(EMBEDDING_TYPES)}")
    embd = next((t for t in info.tensors if t.name == "token_embd.weight"), None)
    width = embd.shape[0] if embd else 0
    if width and width % block_size(wanted):
        fits = [t for t in EMBEDDING_TYPES if width % block_size(t) == 0]
        raise QuantizationError(
            f"the token embeddings are {width} wide, not a multiple of {wanted}'s "
            f"{block_size(wanted)}-element blocks; choose --embeddings from {', '.join(fits)}")
    return wanted
