"""Expert workers: load on demand, keep alive while memory allows, evict the least recently used.

Before a load, the memory model says what the expert needs; if it does not fit beside the
loaded experts, idle experts are unloaded (least recently used first), and if every loaded
expert is busy the request waits until one is free, never crashing the pool. Requests for one
expert are admitted in arrival order, as many at once as its backend serves in parallel (one for
a worker process, its slots for a llama-server). Every decision is taken under one lock on the
current state, never on a stale snapshot.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from ..backends.base import ManagedBackend
from ..backends.worker import Worker
from ..errors import BudgetTooSmall, Cancelled, ExpertCrashed
from ..units import format_size


@dataclass
class Slot:
    """One expert the pool knows: its file, its memory need, and its worker when loaded."""

    key: str
    path: Path
    need: int
    vram: int = 0
    n_gpu_layers: int = 0
    prompt_cache_bytes: int = 0  # of `need`: KV states kept for conversations it left
    keep_alive_s: float | None = None  # the last request's keep_alive (None: the pool's)
    draft: str | None = None  # speculative decoding: a draft model's file, or "ngram"
    pinned: bool = False  # never unloaded, neither to make room nor when idle
    worker: ManagedBackend | None = None  # the loaded backend: a Worker, or the factory's
    loading: bool = False
    active: int = 0  # requests being served now
    last_used: float = 0.0
    load_s: float = 0.0
    tickets: deque = field(default_factory=deque)

    @property
    def busy(self) -> bool:
        return self.active > 0

    def admits(self) -> bool:
        """One more request may start: loaded with a free parallel slot, or cold and unused."""
        if self.loading:
            return False
        if self.worker is None or not self.worker.alive():
            return self.active == 0
        return self.active < max(1, self.worker.parallel)


class Pool:
    """Loaded experts under a memory budget (bytes of RAM, and of VRAM when a GPU is used)."""

    def __init__(self, budget_bytes: int, n_ctx: int, n_threads: int = 0,
                 keep_alive_s: float = 300.0, spare: bool = True, vram_budget_bytes: int = 0,
                 backend: Callable[[], ManagedBackend] | None = None, n_threads_batch: int = 0,
                 pinned: frozenset[str] = frozenset()):
        """`backend` makes an unloaded ManagedBackend (a llama-server, say); None: worker
        processes, with a spare started ahead of need when `spare`."""
        self.budget = budget_bytes
        self.vram_budget = vram_budget_bytes
        self._gpu_offload: bool | None = None
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.n_threads_batch = n_threads_batch
        self.pinned = pinned  # expert ids (a key is "expert:quant")
        self.keep_alive_s = keep_alive_s
        self._slots: dict[str, Slot] = {}
        self._cv = threading.Condition()
        self._next_ticket = 0
        self._spare: Worker | None = None
        self._make: Callable[[], ManagedBackend] = backend or Worker
        self._want_spare = spare and backend is None
        self._closed = False
        self._reaper: threading.Thread | None = None
        if self._want_spare:
            self._spare = Worker()

    # -- state -------------------------------------------------------------------------------
    def used(self) -> int:
        """RAM bytes of the loaded (and loading) experts."""
        return sum(s.need for s in self._slots.values() if s.worker is not None or s.loading)

    def used_vram(self) -> int:
        return sum(s.vram for s in self._slots.values() if s.worker is not None or s.loading)

    def gpu_offload(self) -> bool:
        """Whether the workers' llama.cpp build can offload to a GPU (asked once, of a worker)."""
        if self._gpu_offload is None:
            with self._cv:
                probe: ManagedBackend | None = self._spare
            own = probe is None
            probe = probe or self._make()
            probe.wait_ready()
            self._gpu_offload = probe.gpu_offload
            if own:
                probe.stop()
        return self._gpu_offload

    def status(self) -> list[dict]:
        """Each known expert: loaded or not, memory, busy, seconds of keep-alive left."""
        now = time.monotonic()
        with self._cv:
            return [{
                "expert": key, "loaded": self._live(s), "loading": s.loading,
                "memory_bytes": s.need, "vram_bytes": s.vram, "n_gpu_layers": s.n_gpu_layers,
                "busy": s.busy, "queued": len(s.tickets),
                "keep_alive_s": None if s.pinned or self._ttl(s) < 0 or not self._live(s)
                or s.busy else max(0.0, self._ttl(s) - (now - s.last_used)),
                "pinned": s.pinned,
                "pid": s.worker.pid if s.worker else None,
            } for key, s in self._slots.items()]

    def is_loaded(self, key: str) -> bool:
        """True when `key` has a live worker with its model loaded."""
        with self._cv:
            slot = self._slots.get(key)
            return slot is not None and self._live(slot) and not slot.loading

    @staticmethod
    def _live(slot: Slot) -> bool:
        """A worker that has not died (killed while idle, it is still in the slot until the next
        request finds it dead and loads a new one)."""
        return slot.worker is not None and slot.worker.alive()

    def worker_pids(self) -> list[int]:
        with self._cv:
            return [s.worker.pid for s in self._slots.values() if s.worker and s.worker.pid]

    # -- use ---------------------------------------------------------------------------------
    @contextlib.contextmanager
    def acquire(self, key: str, path: Path, need: int, vram: int = 0, n_gpu_layers: int = 0,
                cancel: threading.Event | None = None, prompt_cache_bytes: int = 0,
                keep_alive_s: float | None = None, draft: str | None = None
                ) -> Iterator[tuple[ManagedBackend, float]]:
        """The worker serving `key`, loaded if needed; yields (worker, load seconds or 0).

        `need` is the RAM the expert takes, `vram` what its `n_gpu_layers` offloaded layers
        take on the GPU; both must fit beside the other loaded experts. A request whose `cancel`
        is set while it waits (its turn, or memory) leaves the queue at once with Cancelled, so
        a client that went away holds no place and loads nothing.
        """
        if need > self.budget:
            raise BudgetTooSmall(
                f"{key} needs {format_size(need)} at {self.n_ctx} tokens of context, more than "
                f"the pool's whole budget of {format_size(self.budget)}"
            )
        if vram > self.vram_budget:
            raise BudgetTooSmall(f"{key} needs {format_size(vram)} of VRAM, more than the "
                                 f"pool's VRAM budget of {format_size(self.vram_budget)}")
        self._start_reaper(force=bool(keep_alive_s and keep_alive_s > 0))
        with self._cv:
            slot = self._slots.setdefault(key, Slot(key, Path(path), need,
                                                    pinned=key.split(":")[0] in self.pinned))
            if keep_alive_s is not None:  # as Ollama: the latest request's keep_alive holds
                slot.keep_alive_s = keep_alive_s
            if slot.worker is None and not slot.loading:  # a cold slot takes the current plan
                slot.need, slot.vram, slot.n_gpu_layers = need, vram, n_gpu_layers
                slot.prompt_cache_bytes = prompt_cache_bytes
                slot.draft = draft
            ticket = self._next_ticket
            self._next_ticket += 1
            slot.tickets.append(ticket)
            try:
                while slot.tickets[0] != ticket or not slot.admits():
                    self._wait(key, cancel)
                slot.active += 1
                load_needed = slot.worker is None or not slot.worker.alive()
                if load_needed:
                    slot.worker = None
                    try:
                        victims = self._make_room(slot, cancel)
                    except Cancelled:
                        slot.active -= 1
                        raise
                    slot.loading = True
            finally:
                slot.tickets.remove(ticket)
                self._cv.notify_all()
        load_s = 0.0
        try:
            if load_needed:
                for victim in victims:
                    victim.stop()
                load_s = self._load(slot)
            assert slot.worker is not None  # loaded, and held by this request
            yield slot.worker, load_s
        except ExpertCrashed:
            self._drop(slot)
            raise
        finally:
            with self._cv:
                slot.active -= 1
                slot.last_used = time.monotonic()
                self._cv.notify_all()
            if slot.keep_alive_s == 0 and not slot.pinned:
                self.unload(key)  # keep_alive 0: unload as soon as it is idle
            if load_needed and self._want_spare and not self._closed:
                # Only after the request: a new spare (a Python start and llama.cpp import,
                # about a core-second) started sooner would compete with the load and the
                # first tokens for the CPU.
                threading.Thread(target=self._refill_spare, daemon=True).start()

    def _wait(self, key: str, cancel: threading.Event | None) -> None:
        """Under the lock: wait for a change, polling `cancel` when there is one."""
        if cancel is not None and cancel.is_set():
            raise Cancelled(f"cancelled while waiting for {key}")
        self._cv.wait(None if cancel is None else 0.05)

    def _make_room(self, slot: Slot, cancel: threading.Event | None = None
                   ) -> list[ManagedBackend]:
        """Under the lock: evict idle experts (LRU first) until `slot` fits, or wait for one."""
        victims: list[tuple[Slot, ManagedBackend]] = []
        try:
            while (self.used() + slot.need > self.budget
                   or self.used_vram() + slot.vram > self.vram_budget):
                idle = [s for s in self._slots.values()
                        if s.worker is not None and not s.busy and not s.loading and s is not slot
                        and not s.pinned]
                if idle:
                    lru = min(idle, key=lambda s: s.last_used)
                    assert lru.worker is not None
                    victims.append((lru, lru.worker))
                    lru.worker = None
                    continue
                self._wait(slot.key, cancel)  # every loaded expert is busy: wait for one to finish
        except Cancelled:
            for victim, worker in victims:  # none was stopped yet: give them back
                victim.worker = worker
            raise
        return [worker for _, worker in victims]

    def _load(self, slot: Slot) -> float:
        started = time.perf_counter()
        worker = self._take_worker()
        try:
            worker.load(str(slot.path), self.n_ctx, self.n_threads, slot.n_gpu_layers,
                        n_threads_batch=self.n_threads_batch,
                        prompt_cache_bytes=slot.prompt_cache_bytes, draft=slot.draft)
        except BaseException:
            worker.stop()
            with self._cv:
                slot.loading = False
                self._cv.notify_all()
            raise
        with self._cv:
            slot.worker, slot.loading = worker, False
            slot.load_s = time.perf_counter() - started
            self._cv.notify_all()
        return slot.load_s

    def _take_worker(self) -> ManagedBackend:
        with self._cv:
            worker: ManagedBackend | None = self._spare
            self._spare = None
        if worker is None or not worker.alive():
            worker = self._make()
        worker.wait_ready()
        return worker

    def ready_spare(self) -> int | None:
        """The spare worker's pid once it is started and imported (starting one if a refill is
        still pending); None when the pool keeps no spare."""
        if not self._want_spare or self._closed:
            return None
        with self._cv:
            spare = self._spare
        if spare is None:
            self._refill_spare()
            with self._cv:
                spare = self._spare
        if spare is None:
            return None
        spare.wait_ready()
        return spare.pid

    def _refill_spare(self) -> None:
        fresh: Worker | None = Worker()
        with self._cv:
            if self._spare is None and not self._closed:
                self._spare, fresh = fresh, None
        if fresh is not None:
            fresh.stop()

    def _drop(self, slot: Slot) -> None:
        """A crashed worker: forget it so the next request starts a new one."""
        with self._cv:
            worker, slot.worker = slot.worker, None
            self._cv.notify_all()
        if worker is not None:
            worker.stop(timeout=1)

    # -- unloading -----------------------------------------------------------------------------
    def unload(self, key: str) -> bool:
        """Unload an idle expert now; False if it is not loaded or busy."""
        with self._cv:
            slot = self._slots.get(key)
            if slot is None or slot.worker is None or slot.busy or slot.loading:
                return False
            worker, slot.worker = slot.worker, None
            self._cv.notify_all()
        worker.stop()
        return True

    def _ttl(self, slot: Slot) -> float:
        """Idle seconds before `slot` unloads: its last request's keep_alive, else the pool's
        (whose 0 means never); negative: never."""
        if slot.keep_alive_s is not None:
            return slot.keep_alive_s
        return self.keep_alive_s if self.keep_alive_s > 0 else -1.0

    def unload_idle(self, older_than_s: float | None = None) -> list[str]:
        """Unload experts idle for longer than their keep-alive (pinned ones never); returns
        their keys."""
        now = time.monotonic()
        with self._cv:
            keys = [k for k, s in self._slots.items() if s.worker is not None and not s.busy
                    and not s.loading and not s.pinned
                    and 0 <= (self._ttl(s) if older_than_s is None else older_than_s)
                    <= now - s.last_used]
        return [k for k in keys if self.unload(k)]

    def _start_reaper(self, force: bool = False) -> None:
        if self._reaper is None and (self.keep_alive_s > 0 or force):
            self._reaper = threading.Thread(target=self._reap, daemon=True, name="pool-reaper")
            self._reaper.start()

    def _reap(self) -> None:
        while not self._closed:
            time.sleep(min(1.0, max(0.05, (self.keep_alive_s or 1.0) / 4)))
            if not self._closed:
                self.unload_idle()

    def close(self) -> None:
        """Stop every worker (the spare too)."""
        self._closed = True
        with self._cv:
            workers = [s.worker for s in self._slots.values() if s.worker is not None]
            for s in self._slots.values():
                s.worker = None
            spare, self._spare = self._spare, None
        for w in workers + ([spare] if spare else []):
            w.stop()
