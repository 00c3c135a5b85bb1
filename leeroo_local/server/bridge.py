"""A blocking service stream, run in its own thread, read from the event loop.

The service's generators block (queue for an expert, load it, read tokens from its worker),
so each request runs in a thread of its own (kept afterwards for a later request: Threads) and
hands its events over through a deque and an asyncio.Event. Stopping the pump sets the cancel event that the service and the pool watch
(a queued request leaves the queue, a running one stops at the next token) and closes the
generator, so the service logs the request as cancelled.
"""

from __future__ import annotations

import asyncio
import collections
import queue
import threading
from typing import Callable, Iterator

from ..runtime.service import Result, TextEvent

END = object()  # the generator is exhausted
TIMEOUT = object()  # nothing arrived in time


class Cancel(threading.Event):
    """The cancel event the service and the pool watch, with why it was set (for the log)."""

    reason: str | None = None


class Threads:
    """Request threads, kept (at most `keep`, for `idle_s`) after their request for the next
    ones: Thread.start waits until the new thread runs, a round trip between threads on every
    request's way to its first token; handing work to a waiting thread is one wakeup."""

    def __init__(self, keep: int = 8, idle_s: float = 60.0):
        self.keep, self.idle_s = keep, idle_s
        self._lock = threading.Lock()
        self._idle: list[_Runner] = []

    def run(self, work: Callable[[], None], name: str) -> None:
        """Run `work` in a waiting thread, or a new one."""
        with self._lock:
            runner = self._idle.pop() if self._idle else None
        if runner is None:
            runner = _Runner(self)
            runner.start()
        runner.give(work, name)

    def _park(self, runner: _Runner) -> bool:
        with self._lock:
            if len(self._idle) < self.keep:
                self._idle.append(runner)
                return True
            return False

    def _leave(self, runner: _Runner) -> bool:
        """An idle thread's wait ended: True if it may exit (nobody took it meanwhile)."""
        with self._lock:
            if runner in self._idle:
                self._idle.remove(runner)
                return True
            return False


class _Runner(threading.Thread):
    def __init__(self, threads: Threads):
        super().__init__(daemon=True, name="leeroo-request")
        self._threads = threads
        self._work: queue.SimpleQueue = queue.SimpleQueue()

    def give(self, work: Callable[[], None], name: str) -> None:
        self._work.put((work, name))

    def run(self) -> None:
        while True:
            try:
                work, name = self._work.get(timeout=self._threads.idle_s)
            except queue.Empty:
                if self._threads._leave(self):
                    return
                continue  # taken just now: its work is on the way
            self.name = f"leeroo-{name}"
            try:
                work()
            finally:
                work = None  # let the request's objects go while this thread waits
                self.name = "leeroo-request"
            if not self._threads._park(self):
                return


HOLD_S = 0.5  # the longest a stream's first token holds back the next (EventPump.delivered)


class EventPump:
    """Runs `start(cancel)` (a service generator) in a thread; `get()` yields its events, then
    an exception it raised (as a value), then END.

    With `hold_first`, the thread asks the generator for nothing more after the first
    TextEvent until the reader says it is delivered (or HOLD_S passes): the expert computes
    its second token after the first one is written to the client, not while the server's
    threads and the client need the cores to deliver it (the worker waits for that ask).
    """

    def __init__(self, start: Callable[[threading.Event], Iterator], name: str = "request",
                 hold_first: bool = False, threads: Threads | None = None):
        """`threads`: where the generator runs (a thread of its own when None)."""
        self.cancel = Cancel()
        self._delivered = threading.Event()
        if not hold_first:
            self._delivered.set()
        self._done = threading.Event()
        self._loop = asyncio.get_running_loop()
        self._items: collections.deque = collections.deque()
        self._ready = asyncio.Event()
        self._waking = False  # a wake-up of the loop is scheduled (_put)
        if threads is not None:
            threads.run(lambda: self._run(start), name)
        else:
            threading.Thread(target=self._run, args=(start,), daemon=True,
                             name=f"leeroo-{name}").start()

    def _put(self, item) -> None:
        """Queue an item; wake the event loop only if no wake-up is on its way already (each
        one is a write to the loop's self-pipe and a turn of the loop: per token, 8 streams
        at once, that is CPU the expert's threads lose)."""
        self._items.append(item)
        if self._waking:
            return
        self._waking = True
        try:
            self._loop.call_soon_threadsafe(self._wake)
        except RuntimeError:  # the loop has closed (server shut down): nobody is listening
            self.cancel.set()

    def _wake(self) -> None:
        self._waking = False  # first: an item queued after this line schedules its own wake-up
        self._ready.set()

    def _run(self, start) -> None:
        try:
            stream = start(self.cancel)
            try:
                for event in stream:
                    self._put(event)
                    if isinstance(event, TextEvent) and not self._delivered.is_set():
                        self._delivered.wait(HOLD_S)
                        self._delivered.set()
                    # A Result is already logged; closing after it would log a cancellation too.
                    if self.cancel.is_set() and not isinstance(event, Result):
                        break
            finally:
                stream.close()  # early: GeneratorExit inside the service = cancelled and logged
        except BaseException as exc:  # handed to the event loop, which renders it
            self._put(exc)
        try:
            self._put(END)
        finally:
            self._done.set()

    async def get(self, timeout: float | None = None):
        """The next event, an exception (as a value), END, or TIMEOUT after `timeout` s."""
        while not self._items:
            self._ready.clear()
            if self._items:
                break
            try:
                await asyncio.wait_for(self._ready.wait(), timeout)
            except asyncio.TimeoutError:
                if not self._items:
                    return TIMEOUT
        return self._items.popleft()

    def ready(self) -> bool:
        """Something is queued: get_nowait() returns it."""
        return bool(self._items)

    def get_nowait(self):
        """The next queued item (call only when ready())."""
        return self._items.popleft()

    @property
    def running(self) -> bool:
        """True until the service generator has ended (and the request is logged)."""
        return not self._done.is_set()

    def join(self, timeout: float) -> None:
        self._done.wait(timeout)

    def delivered(self) -> None:
        """From the event loop: what `get()` gave so far is written to the client."""
        self._delivered.set()

    def stop(self, reason: str | None = None) -> None:
        """Give up the request (the client went away, or the answer is complete)."""
        if reason and not self.cancel.is_set():
            self.cancel.reason = reason
        self.cancel.set()
        self._delivered.set()

    def abort(self, exc: BaseException, reason: str) -> None:
        """From the event loop: stop the request and hand `exc` to the reader before anything
        still queued (the server is shutting down)."""
        self.stop(reason)
        self._items.appendleft(exc)
        self._ready.set()
