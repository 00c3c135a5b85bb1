"""Take an expert out of the user's catalog: its models.toml table, the [[quants]] made from it,
its place in the saved universe; its files only when asked, and never an Ollama store's blob
(Ollama owns it; `ollama rm` removes it)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from . import catalog_edit
from ..catalog import HubSource, LocalSource, load_user_catalog
from ..errors import ConfigError
from ..locate import local_path
from ..universe import load_universe, save_universe


class RemoveResult(BaseModel):
    id: str = Field(description="The expert removed.")
    catalog_file: str = Field(description="The models.toml it was removed from.")
    universe: list[str] | None = Field(
        default=None, description="The saved universe after removal, when it was a member.")
    deleted: list[str] = Field(default_factory=list, description="Files deleted.")
    kept: list[str] = Field(default_factory=list, description="Its files left on disk.")


def remove(expert_id: str, delete_files: bool = False) -> RemoveResult:
    """Remove `expert_id` (UnknownExpert unless it is in the user's models.toml)."""
    catalog = load_user_catalog()
    expert = catalog.get(expert_id)
    files = [p for q in expert.quants if (p := local_path(expert, q)) is not None]
    universe = load_universe()
    rest = None
    if universe is not None and expert_id in universe.ids():
        rest = universe.model_copy(update={"members": [m for m in universe.members
                                                       if m.expert != expert_id]})
        if not rest.members:
            raise ConfigError(f"{expert_id} is the only member of the saved universe; fit "
                              "another one first (`leeroo-local fit --save`)")
    catalog_edit.remove_expert(expert_id)
    if rest is not None:
        save_universe(rest)
    result = RemoveResult(id=expert_id, catalog_file=str(catalog_edit.user_catalog_files()[0]),
                          universe=[f"{m.expert}@{m.quant}" for m in rest.members] if rest else None)
    ollama = isinstance(expert.source, LocalSource) and (
        Path(expert.source.folder).expanduser().parent / "manifests").is_dir()
    for path in files:
        if not delete_files or ollama:
            result.kept.append(str(path))
            continue
        targets = [path.with_name(n) for n in _shards(path.name)]
        for t in targets:
            blob = t.resolve() if isinstance(expert.source, HubSource) else None
            t.unlink(missing_ok=True)
            result.deleted.append(str(t))
            if blob is not None and blob != t:
                blob.unlink(missing_ok=True)
                result.deleted.append(str(blob))
    return result


def _shards(name: str) -> list[str]:
    from ..locate import shard_names

    return shard_names(name)
