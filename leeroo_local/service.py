"""The facade the adapters (CLI, server, TUI) use: route a prompt, run it on an expert, measure.

Until the expert pool lands, experts are loaded in this process and kept loaded; the pool will
replace `_model()` without changing what adapters see.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterator

from pydantic import BaseModel, Field

from .backends.base import Chunk, Sampling
from .catalog import Catalog, load_user_catalog
from .hardware import EnergyMeter
from .locate import ensure_local
from .settings import Settings
from .universe import Universe, current_universe


class Route(BaseModel):
    """Which expert answers and why."""

    expert: str
    quant: str
    scores: dict[str, float] = Field(default_factory=dict)
    reason: str = ""
    route_s: float = 0.0


class Timings(BaseModel):
    route_s: float = 0.0
    load_s: float = 0.0
    ttft_s: float = 0.0
    total_s: float = 0.0
    tokens_per_s: float = 0.0


class Energy(BaseModel):
    joules: float
    method: str = Field(description="measured (RAPL/NVML) or estimated (CPU time x W/core).")
    source: str = ""


class Result(BaseModel):
    """A finished request: the answer and everything measured about it."""

    answer: str
    expert: str
    quant: str
    route: Route
    timings: Timings
    tokens: dict[str, int]
    energy: Energy
    finish_reason: str


@dataclass
class TextEvent:
    text: str


class Service:
    """Everything a request needs, built once: catalog, universe, settings, loaded experts."""

    def __init__(self, settings: Settings, catalog: Catalog | None = None,
                 universe: Universe | None = None):
        self.settings = settings
        self.catalog = catalog or load_user_catalog()
        self.universe = universe or current_universe(self.catalog)
        if settings.n_ctx:
            self.universe = self.universe.model_copy(update={"n_ctx": settings.n_ctx})
        self._loaded: dict[str, object] = {}

    def route(self, prompt: str, expert: str = "auto") -> Route:
        """The expert for `prompt`: the one named, or (for now) the universe's first."""
        started = time.perf_counter()
        if expert != "auto":
            member = next((m for m in self.universe.members if m.expert == expert), None)
            quant = member.quant if member else self.catalog.get(expert).default_quant
            self.catalog.get(expert).quant(quant)
            return Route(expert=expert, quant=quant, reason="named by the request",
                         route_s=time.perf_counter() - started)
        first = self.universe.members[0]
        return Route(expert=first.expert, quant=first.quant,
                     reason="best expert of the universe (no routing policy yet)",
                     route_s=time.perf_counter() - started)

    def prepare(self, expert: str, quant: str):
        """Make the expert's file present (assemble, quantize or download); return its path."""
        e = self.catalog.get(expert)
        return ensure_local(self.catalog, e, e.quant(quant))

    def _model(self, route: Route):
        key = f"{route.expert}:{route.quant}"
        if key not in self._loaded:
            from .backends.llama_cpp import LlamaCppModel

            started = time.perf_counter()
            path = self.prepare(route.expert, route.quant)
            self._loaded[key] = LlamaCppModel(path, n_ctx=self.universe.n_ctx,
                                              n_threads=self.settings.n_threads or None)
            return self._loaded[key], time.perf_counter() - started
        return self._loaded[key], 0.0

    def chat(self, messages: list[dict], expert: str = "auto",
             sampling: Sampling | None = None) -> Iterator[TextEvent | Result]:
        """Stream TextEvents, then one Result with the route, timings, tokens and energy."""
        sampling = sampling or Sampling()
        prompt = next((m.get("content") or "" for m in reversed(messages) if m.get("role") == "user"), "")
        route = self.route(prompt, expert)
        meter = EnergyMeter(self.settings.sysfs_root, self.settings.watts_per_core).start()
        started = time.perf_counter()
        model, load_s = self._model(route)
        gen_start = time.perf_counter()
        parts: list[str] = []
        first_at = None
        last = Chunk()
        for chunk in model.chat(messages, sampling):
            if chunk.text:
                if first_at is None:
                    first_at = time.perf_counter()
                parts.append(chunk.text)
                yield TextEvent(chunk.text)
            if chunk.finish_reason:
                last = chunk
        ended = time.perf_counter()
        decode_s = ended - (first_at or ended)
        energy = meter.stop()
        yield Result(
            answer="".join(parts), expert=route.expert, quant=route.quant, route=route,
            timings=Timings(
                route_s=route.route_s, load_s=load_s,
                ttft_s=(first_at - gen_start) if first_at else 0.0,
                total_s=ended - started + route.route_s,
                tokens_per_s=(last.completion_tokens - 1) / decode_s if decode_s > 0 and last.completion_tokens > 1 else 0.0,
            ),
            tokens={"prompt": last.prompt_tokens, "completion": last.completion_tokens},
            energy=Energy(joules=energy.joules, method=energy.method, source=energy.source),
            finish_reason=last.finish_reason or "stop",
        )

    def close(self) -> None:
        for model in self._loaded.values():
            model.close()
        self._loaded.clear()
