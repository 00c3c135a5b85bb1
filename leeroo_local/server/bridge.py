"""A blocking service stream, run in its own thread, read from the event loop.

The service's generators block (queue for an expert, load it, read tokens from its worker),
so each request runs in a thread of its own and hands its events over through a deque and an
asyncio.Event. Stopping the pump sets the cancel event that the service and the pool watch
(a queued request leaves the queue, a running one stops at the next token) and closes the
generator, so the service logs the request as cancelled.
"""

from __future__ import annotations

import asyncio
import collections
import threading
from typing import Callable, Iterator

from ..service import Result

END = object()  # the generator is exhausted
TIMEOUT = object()  # nothing arrived in time


class Cancel(threading.Event):
    """The cancel event the service and the pool watch, with why it was set (for the log)."""

    reason: str | None = None


class EventPump:
    """Runs `start(cancel)` (a service generator) in a thread; `get()` yields its events, then
    an exception it raised (as a value), then END."""

    def __init__(self, start: Callable[[threading.Event], Iterator], name: str = "request"):
        self.cancel = Cancel()
        self._loop = asyncio.get_running_loop()
        self._items: collections.deque = collections.deque()
        self._ready = asyncio.Event()
        self._thread = threading.Thread(target=self._run, args=(start,), daemon=True,
                                        name=f"leeroo-{name}")
        self._thread.start()

    def _put(self, item) -> None:
        self._items.append(item)
        try:
            self._loop.call_soon_threadsafe(self._ready.set)
        except RuntimeError:  # the loop has closed (server shut down): nobody is listening
            self.cancel.set()

    def _run(self, start) -> None:
        try:
            stream = start(self.cancel)
            try:
                for event in stream:
                    self._put(event)
                    # A Result is already logged; closing after it would log a cancellation too.
                    if self.cancel.is_set() and not isinstance(event, Result):
                        break
            finally:
                stream.close()  # early: GeneratorExit inside the service = cancelled and logged
        except BaseException as exc:  # handed to the event loop, which renders it
            self._put(exc)
        self._put(END)

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

    @property
    def running(self) -> bool:
        """True until the service generator has ended (and the request is logged)."""
        return self._thread.is_alive()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def stop(self, reason: str | None = None) -> None:
        """Give up the request (the client went away, or the answer is complete)."""
        if reason and not self.cancel.is_set():
            self.cancel.reason = reason
        self.cancel.set()

    def abort(self, exc: BaseException, reason: str) -> None:
        """From the event loop: stop the request and hand `exc` to the reader before anything
        still queued (the server is shutting down)."""
        self.stop(reason)
        self._items.appendleft(exc)
        self._ready.set()
