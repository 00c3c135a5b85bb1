"""The facade the adapters (CLI, server, TUI) use: route a prompt, run it on an expert, measure.

Experts run in worker processes managed by the pool (loaded on demand, unloaded when memory is
needed or their keep-alive ends); the adapters see only routes, text events and results.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Iterator

from pydantic import BaseModel, Field

from .backends.base import Sampling
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
        self._pool = None
        self._needs: dict[str, int] = {}

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

    def pool(self):
        """The expert pool, started on first use (so `--help` and routing start nothing)."""
        if self._pool is None:
            from .hardware import available_ram
            from .pool import Pool
            from .units import parse_size

            budget = (parse_size(self.settings.ram_budget) if self.settings.ram_budget
                      else int(available_ram() * 0.8))
            self._pool = Pool(budget, self.universe.n_ctx, self.settings.n_threads,
                              self.settings.keep_alive_s)
        return self._pool

    def need(self, path) -> int:
        """Predicted bytes of an expert file at the universe's context (header facts, cached)."""
        key = str(path)
        if key not in self._needs:
            from .gguf_info import read_gguf
            from .memory import estimate, shape_from_gguf

            self._needs[key] = estimate(shape_from_gguf(read_gguf(path)), self.universe.n_ctx).total_bytes
        return self._needs[key]

    def chat(self, messages: list[dict], expert: str = "auto", sampling: Sampling | None = None,
             cancel: threading.Event | None = None) -> Iterator[TextEvent | Result]:
        """Stream TextEvents, then one Result with the route, timings, tokens and energy."""
        prompt = next((m.get("content") or "" for m in reversed(messages) if m.get("role") == "user"), "")
        return self._run("chat", messages, prompt, expert, sampling, cancel)

    def complete(self, prompt: str, expert: str = "auto", sampling: Sampling | None = None,
                 cancel: threading.Event | None = None) -> Iterator[TextEvent | Result]:
        """Like chat, for a plain prompt (OpenAI's legacy completions)."""
        return self._run("complete", prompt, prompt, expert, sampling, cancel)

    def _run(self, op, payload, prompt, expert, sampling, cancel):
        sampling = sampling or Sampling()
        route = self.route(prompt, expert)
        started = time.perf_counter()
        path = self.prepare(route.expert, route.quant)
        key = f"{route.expert}:{route.quant}"
        with self.pool().acquire(key, path, self.need(path)) as (worker, load_s):
            meter = EnergyMeter(self.settings.sysfs_root, self.settings.watts_per_core,
                                pids=[worker.pid]).start()
            gen_start = time.perf_counter()
            parts: list[str] = []
            first_at = None
            final: dict = {}
            for kind, value in worker.stream(op, payload, sampling.model_dump(), cancel):
                if kind == "chunk":
                    if first_at is None:
                        first_at = time.perf_counter()
                    parts.append(value)
                    yield TextEvent(value)
                else:
                    final = value
            ended = time.perf_counter()
            energy = meter.stop()
        produced = final.get("completion_tokens", 0)
        decode_s = ended - (first_at or ended)
        yield Result(
            answer="".join(parts), expert=route.expert, quant=route.quant, route=route,
            timings=Timings(
                route_s=route.route_s, load_s=load_s,
                ttft_s=(first_at - gen_start) if first_at else 0.0,
                total_s=ended - started + route.route_s,
                tokens_per_s=(produced - 1) / decode_s if decode_s > 0 and produced > 1 else 0.0,
            ),
            tokens={"prompt": final.get("prompt_tokens", 0), "completion": produced},
            energy=Energy(joules=energy.joules, method=energy.method, source=energy.source),
            finish_reason=final.get("finish_reason") or "stop",
        )

    def close(self) -> None:
        """Stop the pool's workers."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None
