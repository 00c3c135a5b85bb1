"""`leeroo-local quant SOURCE --to TYPE`: make a quantization and register it with its expert.

Everything that can be refused is refused before the quantizer runs (unknown type, impossible
conversion, requantization not allowed, a type the expert already offers, an existing output),
so a refusal never leaves a partial file or a changed catalog behind. The result is added to the
user's quants.toml as a quantization of the expert (size basis "exact", with its SHA-256), so
fit, run, serve and chat see it as one more (expert, quantization) pair.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .. import paths
from ..catalog import Catalog, QuantEntry, save_user_quant, user_quant_entries
from ..errors import QuantizationError
from ..gguf_info import read_gguf
from .resolve import Located, locate
from .types import check_conversion, check_embeddings, file_precision


@dataclass(frozen=True)
class Made:
    """A quantization just made: where, how big, from what, and its catalog registration."""

    path: Path
    type: str
    size_bytes: int
    sha256: str
    source: Path
    source_type: str
    source_bytes: int
    expert: str | None
    registered: Path | None  # the quants.toml it was added to



def default_output(src: Located, to: str) -> Path:
    """Our models folder: `<expert>.<TYPE>.gguf`, or `<file stem>.<TYPE>.gguf` for a bare file."""
    stem = src.expert or src.path.stem
    return paths.models_dir() / f"{stem}.{to}.gguf"


def make_quant(
    catalog: Catalog, source: str, to: str, *, out: Path | None = None,
    allow_requantize: bool = False, expert: str | None = None, register: bool = True,
    embeddings: str | None = None, force: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Made:
    """Quantize `source` (expert id, id@QUANT or GGUF path) to `to`; register it unless told not.

    `expert` names the expert a bare GGUF path belongs to (else it is matched by file).
    `embeddings`: "same" (the target's block type) or a tensor type for the token embeddings;
    None keeps llama.cpp's choice (6 bits or more), which in a model whose parameters are
    mostly embeddings, like Gemma 3 270M (168 M of 268 M), keeps most of the file's size.
    """
    from ..backends.quantize import quant_types, quantize_file

    src = locate(catalog, source)
    if expert:
        catalog.get(expert)
        src = Located(src.path, expert, src.quant)
    info = read_gguf(src.path)
    source_type = file_precision(info)
    target = check_conversion(source_type, to, allow_requantize=allow_requantize,
                              known=set(quant_types()))
    embed_type = check_embeddings(info, target, embeddings)
    if register and src.expert is None:
        raise QuantizationError(
            f"{src.path} is not the file of a catalog expert, so the result has no expert to "
            "belong to: pass --expert ID, or --no-register to only write the file")
    if register:
        _check_registrable(catalog, src.expert, target)
    dst = (out.expanduser() if out else default_output(src, target)).resolve()
    if dst == src.path.resolve():
        raise QuantizationError(f"--out {dst} is the source file itself")
    if dst.exists() and not force:
        raise QuantizationError(f"{dst} exists; pass --force to replace it, or --out elsewhere")
    quantize_file(src.path, dst, target, allow_requantize=allow_requantize, same_embeddings=False,
                  embeddings=embed_type, progress=progress)
    size, digest = dst.stat().st_size, paths.sha256_file(dst)
    registered = None
    if register:
        registered = save_user_quant(QuantEntry(
            expert=src.expert, type=target, file=dst.name, path=str(dst), size_bytes=size,
            size_basis="exact", bits_per_weight=round(8 * size / max(info.n_params, 1), 2),
            sha256=digest))
    return Made(dst, target, size, digest, src.path, source_type, src.path.stat().st_size,
                src.expert, registered)


def _check_registrable(catalog: Catalog, expert_id: str, target: str) -> None:
    """A type the expert already offers may only be replaced when we made it ourselves."""
    expert = catalog.get(expert_id)
    ours = {(q.expert, q.type.upper()) for q in user_quant_entries()}
    offers = {q.type.upper() for q in expert.quants}
    if target in offers and (expert_id, target) not in ours:
        raise QuantizationError(
            f"{expert_id} already offers {target} in the catalog; to make your own copy anyway, "
            "pass --out PATH --no-register")
