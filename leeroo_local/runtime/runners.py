"""Which backend runs an expert: a lookup on the catalog's source kind.

A GGUF file on this machine (hf, pypi, derived, local sources) runs in the pool, under the
memory budget, in a worker process or a llama-server (the `local_backend` setting); an `openai`
source is a remote server. The service asks `Runners.open` for a `Backend` and never which kind
it got.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Callable, ContextManager, Iterator, Protocol

from ..backends.base import Backend
from ..catalog import Catalog, Expert, OpenAISource
from ..errors import NotPresent
from ..locate import local_state
from .memory_plan import MemoryPlanner, ram_budget, vram_budget
from ..settings import Settings
from ..universe import Member, Universe

if TYPE_CHECKING:
    from .pool import Pool  # imported on first use: `--help` and routing start nothing


def present(catalog: Catalog, expert_id: str, quant: str) -> Path:
    """The expert's file if it is on this machine and its size is the catalog's (stats only);
    else NotPresent naming the `pull` command. A request never downloads, assembles or
    quantizes: run, chat and serve provision at start (provision/ensure.py)."""
    e = catalog.get(expert_id)
    q = e.quant(quant)
    path, problem = local_state(e, q)
    if path is not None and problem is None:
        return path
    state = "is not on this machine" if path is None else f"is damaged ({problem})"
    raise NotPresent(f"{e.id} {q.type} {state}; run `leeroo-local pull {e.id} --quant {q.type}`")


class Runner(Protocol):
    """What the service asks of a runner, whatever runs its experts."""

    def open(self, expert: Expert, quant: str, cancel: threading.Event | None = None,
             keep_alive_s: float | None = None) -> ContextManager[tuple[Backend, float, bool]]:
        """(backend, load seconds, on a GPU) for the expert, held for one request;
        `keep_alive_s`: how long it stays loaded once idle (None: the settings')."""
        ...

    def is_warm(self, expert: Expert, quant: str) -> bool:
        """True when a request would not wait for a load."""
        ...

    def status(self, expert: Expert, member: Member) -> dict:
        """The expert's row for the adapters (service.Service.status)."""
        ...

    def close(self) -> None:
        ...


class LocalRunner:
    """Experts whose GGUF file is on this machine: loaded into the pool on demand."""

    def __init__(self, settings: Settings, catalog: Catalog, universe: Universe):
        self.settings, self.catalog, self.universe = settings, catalog, universe
        self.memory = MemoryPlanner(catalog, universe, settings.prompt_cache)
        self._pool: Pool | None = None
        self._lock = threading.Lock()

    def pool(self) -> Pool:
        """The expert pool, started on first use (so `--help` and routing start nothing)."""
        with self._lock:
            if self._pool is None:
                from .pool import Pool

                backend = None
                if self.settings.local_backend == "llama-server":
                    from ..backends.llama_server import LlamaServer

                    LlamaServer(self.settings.llama_server)  # a missing binary fails now, clearly
                    backend = lambda: LlamaServer(  # noqa: E731
                        self.settings.llama_server, self.settings.llama_server_parallel,
                        args=self.settings.llama_server_args)
                self._pool = Pool(ram_budget(self.settings), self.universe.n_ctx,
                                  self.settings.n_threads, self.settings.keep_alive_s,
                                  vram_budget_bytes=vram_budget(self.settings), backend=backend,
                                  n_threads_batch=self.settings.n_threads_batch,
                                  pinned=frozenset(self.settings.pinned))
            return self._pool

    def load_plan(self, path):
        """The MemoryEstimate a load of this file follows (memory_plan.MemoryPlanner.load_plan)."""
        pool = self.pool()
        return self.memory.load_plan(path, pool.vram_budget,
                                     bool(pool.vram_budget) and pool.gpu_offload())

    @contextlib.contextmanager
    def open(self, expert: Expert, quant: str, cancel=None, keep_alive_s: float | None = None
             ) -> Iterator[tuple[Backend, float, bool]]:
        path = present(self.catalog, expert.id, quant)
        key = f"{expert.id}:{quant}"
        plan = self.load_plan(path)
        cache = self.memory.cache_bytes(path)
        draft, draft_bytes = self._draft(expert)
        with self.pool().acquire(key, path, plan.cpu_bytes + cache + draft_bytes, plan.gpu_bytes,
                                 plan.n_gpu_layers, cancel=cancel, prompt_cache_bytes=cache,
                                 keep_alive_s=keep_alive_s, draft=draft) as (backend, load_s):
            yield backend, load_s, plan.n_gpu_layers > 0

    def _draft(self, expert: Expert) -> tuple[str | None, int]:
        """Speculative decoding chosen for this expert (Settings.speculative, which `tune
        --speculative` writes): prompt lookup on either backend; a draft model's file and the
        memory it adds on the llama-server backend (the worker has no draft models)."""
        chosen = self.settings.speculative.get(expert.id)
        if chosen == "ngram":
            return "ngram", 0
        if not chosen or self.settings.local_backend != "llama-server":
            return None, 0
        drafter = self.catalog.get(chosen)
        member = next((m for m in self.universe.members if m.expert == chosen), None)
        path = present(self.catalog, chosen, member.quant if member else drafter.default_quant)
        return str(path), self.memory.need(path)

    def is_warm(self, expert: Expert, quant: str) -> bool:
        return self._pool is not None and self._pool.is_loaded(f"{expert.id}:{quant}")

    def status(self, expert: Expert, member: Member) -> dict:
        """Memory (predicted from the file's header when present, else catalog facts), and the
        pool's state of this expert when it has one."""
        row = {"remote": False, "loaded": False, "loading": False, "busy": False, "queued": 0,
               "keep_alive_s": None, "memory_bytes": self.memory.member_total(member),
               "pinned": expert.id in self.settings.pinned}
        key = f"{expert.id}:{member.quant}"
        slot = None if self._pool is None else next(
            (s for s in self._pool.status() if s["expert"] == key), None)
        if slot:
            row.update({k: slot[k] for k in ("loaded", "loading", "busy", "queued", "keep_alive_s",
                                             "pinned")})
        return row

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None


class RemoteRunner:
    """Experts on another machine: always warm, no memory here, one HTTP client per expert."""

    def __init__(self, settings: Settings, catalog: Catalog, universe: Universe):
        self._experts: dict[str, Backend] = {}
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def open(self, expert: Expert, quant: str, cancel=None, keep_alive_s: float | None = None
             ) -> Iterator[tuple[Backend, float, bool]]:
        from ..backends.openai_remote import RemoteExpert

        assert isinstance(expert.source, OpenAISource)  # RUNNERS maps only openai here
        with self._lock:
            backend = self._experts.setdefault(expert.id, RemoteExpert(expert.id, expert.source))
        yield backend, 0.0, False

    def is_warm(self, expert: Expert, quant: str) -> bool:
        return True

    def status(self, expert: Expert, member: Member) -> dict:
        """Always ready from here: no memory, no queue (the far side keeps those)."""
        return {"remote": True, "loaded": False, "loading": False, "busy": False, "queued": 0,
                "keep_alive_s": None, "memory_bytes": None, "pinned": False}

    def close(self) -> None:
        with self._lock:
            experts, self._experts = list(self._experts.values()), {}
        for backend in experts:
            backend.close()


RUNNERS: dict[str, Callable[[Settings, Catalog, Universe], Runner]] = {
    "hf": LocalRunner, "pypi": LocalRunner, "derived": LocalRunner, "local": LocalRunner,
    "openai": RemoteRunner,
}
"""Source kind -> runner; kinds that share a runner class share one instance (one pool)."""


class Runners:
    """One runner per class in RUNNERS, made on first use."""

    def __init__(self, settings: Settings, catalog: Catalog, universe: Universe):
        self.settings, self.catalog, self.universe = settings, catalog, universe
        self._made: dict[Callable, Runner] = {}
        self._lock = threading.Lock()

    def for_kind(self, kind: str) -> Runner:
        cls = RUNNERS[kind]
        with self._lock:
            if cls not in self._made:
                self._made[cls] = cls(self.settings, self.catalog, self.universe)
            return self._made[cls]

    def of(self, expert_id: str) -> Runner:
        """The runner of an expert, by its catalog source kind."""
        return self.for_kind(self.catalog.get(expert_id).source.kind)

    @property
    def local(self) -> LocalRunner:
        runner = self.for_kind("local")
        assert isinstance(runner, LocalRunner)
        return runner

    def close(self) -> None:
        with self._lock:
            made, self._made = list(self._made.values()), {}
        for runner in made:
            runner.close()
