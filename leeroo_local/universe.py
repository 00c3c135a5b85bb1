"""The universe: the experts (and their quantizations) that run, serve and chat route among.

`fit --save` writes one to the user's config; without one, the starter universe (offline
Gemma experts) is used, so a fresh install works with no network.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from . import paths
from .catalog import Catalog
from .diskerrors import disk_errors, removed_on_failure
from .errors import ConfigError

STARTER = (("gemma-3-270m", "Q4_K_M"), ("gemma-3-270m-q4_0", "Q4_0"))


class Member(BaseModel):
    """One expert of the universe at one quantization."""

    expert: str = Field(description="Catalog id of the expert.")
    quant: str = Field(description="Quantization type, e.g. Q4_K_M.")
    memory_bytes: int | None = Field(default=None, description="Predicted memory at n_ctx.")
    host: str | None = Field(default=None, description="The host that serves it (`hosts add`), "
                             "for a remote member `fit --host` placed; None: this machine or "
                             "a remote expert added by hand.")


class Universe(BaseModel):
    """A chosen set of experts and the budget it was chosen for."""

    members: list[Member] = Field(min_length=1, description="Experts, best first.")
    n_ctx: int = Field(default=4096, gt=0, description="Context each expert is loaded with.")
    mode: Literal["resident", "swap"] = Field(
        default="resident", description="resident: all loaded at once; swap: loaded on demand."
    )
    origin: str = Field(default="starter", description="Who chose it: starter, fit, user.")
    budget: dict[str, int] = Field(default_factory=dict, description="Budgets in bytes.")

    def ids(self) -> list[str]:
        return [m.expert for m in self.members]

    def check(self, catalog: Catalog) -> None:
        """Every member must be a catalog expert offering that quantization."""
        for m in self.members:
            catalog.get(m.expert).quant(m.quant)


def starter_universe(n_ctx: int = 4096) -> Universe:
    """The embedded default: Gemma 3 270M at Q4_K_M and a cheaper local Q4_0 of it."""
    return Universe(members=[Member(expert=e, quant=q) for e, q in STARTER], n_ctx=n_ctx)


def load_universe(path: Path | None = None) -> Universe | None:
    """The saved universe, or None when none was saved; ConfigError when the file is invalid."""
    path = path or paths.universe_path()
    if not path.exists():
        return None
    try:
        return Universe.model_validate_json(path.read_text(encoding="utf-8", errors="replace"))
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(map(str, err["loc"]))
        raise ConfigError(f"{path}: invalid universe: {where + ': ' if where else ''}"
                          f"{err['msg']} (write a new one with `leeroo-local fit --save`, or "
                          f"delete it to use the starter experts)") from None


def save_universe(universe: Universe, path: Path | None = None) -> Path:
    """Write atomically, so a crash never leaves a half-written universe."""
    path = path or paths.universe_path()
    tmp = path.with_suffix(".tmp")
    with disk_errors(tmp), removed_on_failure(tmp):
        data = universe.model_dump()
        for member in data["members"]:  # a universe of one machine reads as it always did
            if member["host"] is None:
                del member["host"]
        tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
        tmp.replace(path)
    return path


def current_universe(catalog: Catalog, path: Path | None = None) -> Universe:
    """The saved universe if any, else the starter one; checked against the catalog."""
    universe = load_universe(path) or starter_universe()
    universe.check(catalog)
    return universe
