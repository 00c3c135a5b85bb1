"""Graceful shutdown: stop taking requests, let the ones in flight finish for a grace period, then
end the rest with an error (a stream gets an error event and `[DONE]`, a whole answer a 503), and
wait until each of them has written its log row before the service is closed.

uvicorn alone would cut the remaining streams mid-body after its own timeout, and the process
would exit before the request threads logged anything.
"""

from __future__ import annotations

import asyncio
import time
from typing import Callable

from .bridge import EventPump
from .errors import ApiError

_POLL_S = 0.05


class ShuttingDown(ApiError):
    """The server stopped this request (after the grace period) or refused a new one."""

    def __init__(self, message: str):
        super().__init__(503, message, type_="server_error", code="server_shutting_down")


class Inflight:
    """The requests whose service generators are still running, so a shutdown can wait for them."""

    def __init__(self) -> None:
        self._pumps: set[EventPump] = set()
        self.closing = False

    def track(self, pump: EventPump) -> None:
        """Count `pump` as in flight until its generator ends; refused once shutdown began."""
        if self.closing:
            pump.abort(ShuttingDown("the server is shutting down; send the request again "
                                    "once it is back"), "the server was shutting down")
        self._pumps = {p for p in self._pumps if p.running}
        self._pumps.add(pump)

    def running(self) -> list[EventPump]:
        return [p for p in self._pumps if p.running]

    async def drain(self, grace_s: float, join_s: float = 15.0,
                    hurry: Callable[[], bool] = lambda: False) -> int:
        """Wait up to `grace_s` (until `hurry()`) for the requests in flight, stop the rest, then
        wait (at most `join_s`) for every request thread to finish logging. Returns how many
        were stopped."""
        self.closing = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_s
        while self.running() and loop.time() < deadline and not hurry():
            await asyncio.sleep(_POLL_S)
        left = self.running()
        for pump in left:
            pump.abort(ShuttingDown(f"the server shut down before the answer was complete "
                                    f"(it waited {grace_s:g} s for requests in flight)"),
                       "the server shut down")
        if left:
            await loop.run_in_executor(None, _join, left, join_s)
        return len(left)


def _join(pumps: list[EventPump], timeout: float) -> None:
    end = time.monotonic() + timeout
    for pump in pumps:
        pump.join(max(0.0, end - time.monotonic()))
