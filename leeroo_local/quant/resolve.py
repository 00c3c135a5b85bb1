"""From what the user typed (an expert id, `id@QUANT`, or a GGUF path) to a file on this machine.

A plain expert id means its quantization with the most bits already on this machine (else its
default one, made present the usual way: assembled, derived or pulled); `id@QUANT` names one.
A path is matched back to the catalog expert whose file it is, when there is one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..catalog import Catalog, Expert
from ..errors import LeerooError, UnknownExpert
from ..locate import local_path
from ..provision.ensure import ensure_local
from .types import NOMINAL_BPW, normalize


@dataclass(frozen=True)
class Located:
    """A GGUF file, and the catalog (expert, quantization) it is, when known."""

    path: Path
    expert: str | None = None
    quant: str | None = None


def _best_present(expert: Expert) -> str:
    present = [q for q in expert.quants if local_path(expert, q) is not None]
    if not present:
        return expert.quant().type
    return max(present, key=lambda q: NOMINAL_BPW.get(normalize(q.type), 0.0)).type


def locate(catalog: Catalog, spec: str, *, allow_download: bool = True) -> Located:
    """The file `spec` names; UnknownExpert (listing ids) when it is neither a file nor an id."""
    path = Path(spec).expanduser()
    if path.suffix.lower() == ".gguf" or os.sep in spec or path.exists():
        if not path.exists():
            raise LeerooError(f"{spec}: no such file")
        return match_file(catalog, path.resolve())
    ident, _, quant = spec.partition("@")
    expert = catalog.get(ident)
    if expert.remote:
        raise UnknownExpert(f"{ident} is a remote expert: quantizations need a local GGUF file")
    q = expert.quant(quant or _best_present(expert))
    found = ensure_local(catalog, expert, q, allow_download=allow_download, progress=True)
    return Located(Path(found), expert.id, q.type)


def match_file(catalog: Catalog, path: Path) -> Located:
    """`path` with the catalog (expert, quant) whose local file it is, if any."""
    for e in catalog.experts:
        if e.remote:
            continue
        for q in e.quants:
            found = local_path(e, q)
            if found is not None and _same(found, path):
                return Located(path, e.id, q.type)
    return Located(path)


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
