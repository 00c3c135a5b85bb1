"""Memory planning for the pool: the budgets, and what a load of each expert file needs.

Beside the pool, below the service: the service asks it before a load, the status listing asks
it for every universe member. Every estimate comes from one cache keyed by file and VRAM share.
"""

from __future__ import annotations

import threading
from pathlib import Path

from ..catalog import Catalog
from ..memory import MemoryEstimate, estimate, shape_from_catalog, shape_from_gguf
from ..settings import Settings
from ..universe import Member, Universe


def ram_budget(settings: Settings) -> int:
    """RAM bytes for experts: the setting, else 80% of what is available now."""
    from ..hardware import available_ram
    from ..units import parse_size

    return parse_size(settings.ram_budget) if settings.ram_budget else int(available_ram() * 0.8)


def vram_budget(settings: Settings) -> int:
    """GPU bytes for experts: the setting, else 90% of the free memory NVML reports (0 without
    an NVIDIA GPU: other GPUs need the setting)."""
    from ..hardware import Nvml
    from ..units import parse_size

    if settings.vram_budget:
        return parse_size(settings.vram_budget)
    nvml = Nvml.open()
    return int(nvml.free_memory() * 0.9) if nvml else 0


class MemoryPlanner:
    """What each expert of a universe needs, read from file headers once."""

    def __init__(self, catalog: Catalog, universe: Universe, prompt_cache: float = 0.0):
        self.catalog = catalog
        self.universe = universe
        self.prompt_cache = prompt_cache  # KV states kept, in contexts' worth of the KV cache
        self._cache: dict[tuple[str, int | None], MemoryEstimate] = {}
        self._lock = threading.Lock()

    def _estimate(self, path: Path | str, vram: int | None) -> MemoryEstimate:
        key = (str(path), vram)
        with self._lock:
            found = self._cache.get(key)
        if found is None:
            from ..gguf_info import read_gguf

            found = estimate(shape_from_gguf(read_gguf(path)), self.universe.n_ctx, vram_bytes=vram)
            with self._lock:
                self._cache[key] = found
        return found

    def need(self, path: Path | str) -> int:
        """Predicted bytes of an expert file at the universe's context, all in RAM, with its
        prompt cache."""
        return self._estimate(path, None).total_bytes + self.cache_bytes(path)

    def cache_bytes(self, path: Path | str) -> int:
        """RAM for the KV states the expert keeps for conversations it left (Settings.
        prompt_cache contexts' worth of its KV cache at the universe's context)."""
        return int(self.prompt_cache * self._estimate(path, None).kv_bytes)

    def member_total(self, member: Member) -> int:
        """Predicted bytes of a universe member: from its file's header when present, else from
        catalog facts (0 for a remote expert)."""
        from ..locate import local_path

        expert = self.catalog.get(member.expert)
        if expert.remote:
            return 0
        quant = expert.quant(member.quant)
        path = local_path(expert, quant)
        if path is not None:
            return self.need(path)
        return estimate(shape_from_catalog(expert, quant), self.universe.n_ctx).total_bytes

    def load_plan(self, path: Path | str, vram_budget: int, gpu_offload: bool) -> MemoryEstimate:
        """The estimate a load of this file follows: split between GPU and CPU when there is a
        VRAM budget and llama.cpp can offload, else all in RAM.

        In a resident universe each expert gets a share of the VRAM budget in proportion to its
        size, so the whole universe fits at once as `fit` planned; in swap mode the whole budget.
        """
        if not (vram_budget and gpu_offload):
            return self._estimate(path, None)
        vram = vram_budget
        if self.universe.mode == "resident" and len(self.universe.members) > 1:
            totals = [self.member_total(m) for m in self.universe.members]
            vram = int(vram * self.need(path) / max(1, sum(totals)))
        return self._estimate(path, vram)
