"""Which members of a universe could draft for which (speculative decoding): a smaller model
whose tokenizer is the target's, read from the GGUF headers of the files on this machine.

A draft proposes tokens the target checks in one batch, so the two must turn text into the same
token ids: same tokenizer model, pre-tokenizer, vocabulary size and token list (its SHA-1,
gguf_info.GGUFInfo.tokenizer). It pays only if it costs much less per token than the target: on
a CPU, decoding reads every weight once per token, so the cost is the bytes of weights. These
are candidates only; `leeroo-local tune --speculative` measures them and keeps what pays.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..catalog import Catalog
from ..errors import CorruptModel
from ..gguf_info import read_gguf
from ..locate import local_path
from ..universe import Universe

MAX_DRAFT_SHARE = 0.7
"""A candidate draft reads at most this share of its target's weight bytes per token (a first
cut, not a measured threshold: the measurement decides whether it pays)."""


@dataclass(frozen=True)
class DraftCandidate:
    """A member that could draft for another: `share` is its weight bytes over the target's."""

    target: str
    draft: str
    share: float


def same_tokenizer(a: Path, b: Path) -> bool:
    """True if both files carry the same token list (and tokenizer model and pre-tokenizer);
    False when either has none to compare."""
    ta, tb = read_gguf(a).tokenizer, read_gguf(b).tokenizer
    return ta is not None and ta == tb


def candidates(files: dict[str, Path], max_share: float = MAX_DRAFT_SHARE
               ) -> list[DraftCandidate]:
    """Every (target, draft) pair of `files` (expert id -> GGUF file) with the same tokenizer
    where the draft reads at most `max_share` of the target's weight bytes; per target, the
    cheapest draft first. A file that cannot be read is left out."""
    headers = {}
    for expert, path in files.items():
        try:
            info = read_gguf(path)
        except CorruptModel:
            continue
        if info.tokenizer is not None and info.weights_bytes > 0:
            headers[expert] = info
    pairs = []
    for target, t in headers.items():
        for draft, d in headers.items():
            share = d.weights_bytes / t.weights_bytes
            if draft != target and d.tokenizer == t.tokenizer and share <= max_share:
                pairs.append(DraftCandidate(target, draft, share))
    return sorted(pairs, key=lambda c: (c.target, c.share, c.draft))


def member_files(catalog: Catalog, universe: Universe) -> dict[str, Path]:
    """The universe's local members whose file is on this machine: expert id -> file."""
    files = {}
    for member in universe.members:
        expert = catalog.get(member.expert)
        if expert.remote:
            continue
        path = local_path(expert, expert.quant(member.quant))
        if path is not None:
            files[member.expert] = path
    return files


def for_universe(catalog: Catalog, universe: Universe) -> dict[str, list[str]]:
    """Target expert -> its candidate drafts among the universe's members, cheapest first."""
    out: dict[str, list[str]] = {}
    for c in candidates(member_files(catalog, universe)):
        out.setdefault(c.target, []).append(c.draft)
    return out
