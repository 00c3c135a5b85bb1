"""The state of the hosts (`leeroo-local hosts add`) as this process sees them, for /health, the
chat's pool panel and `experts`: up, down, or backing off after a failure (eligibility.py), when
that was last known, and which universe members each serves.

What is known comes from two places: the requests (a remote member answered, or its host failed
and backs off) and a probe of each host's model list, made when the last word on it is older
than `max_age_s`, all hosts at once with a short timeout, so that a host that is down costs a
reader about a second, not a second per host. The probe asks GET /models, never /health: two
servers that are each other's hosts would otherwise probe each other in a loop.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

from pydantic import BaseModel, Field

from ..hosts import Host
from ..universe import Universe
from .eligibility import Eligibility

PROBE_MAX_AGE_S = 15.0
"""A host's state older than this is probed again when someone asks."""

PROBE_TIMEOUT_S = 1.0


class HostStatus(BaseModel):
    """One host now."""

    name: str
    url: str
    kind: str = Field(description="leeroo (another serve) or openai (an engine).")
    state: Literal["up", "down", "backing-off", "unknown"] = Field(
        description="backing-off: it failed a request and is left out of routing for a while.")
    backoff_s: float | None = Field(default=None, description="Seconds of back-off left.")
    last_check: float | None = Field(default=None, description="Unix time of the last word on "
                                     "it: a probe or a request's outcome.")
    detail: str = Field(default="", description="What that last word was.")
    members: list[str] = Field(description="Universe members it serves.")


class HostMonitor:
    """The hosts' state for one Service (its eligibility keeps the back-off)."""

    def __init__(self, universe: Universe, eligibility: Eligibility,
                 hosts: Callable[[], list[Host]]):
        self._universe = universe
        self._eligibility = eligibility
        self._hosts = hosts
        self._lock = threading.Lock()
        self._probes: dict[str, tuple[float, bool, str]] = {}  # url: (time, ok, detail)

    def states(self, probe: bool = True, max_age_s: float = PROBE_MAX_AGE_S,
               timeout_s: float = PROBE_TIMEOUT_S) -> list[HostStatus]:
        """Every host's state; with `probe`, hosts with no word newer than max_age_s are asked."""
        hosts = self._hosts()
        if probe:
            stale = [h for h in hosts if self._age(h) > max_age_s]
            if stale:
                with ThreadPoolExecutor(max_workers=min(8, len(stale))) as pool:
                    list(pool.map(lambda h: self._probe(h, timeout_s), stale))
        return [self._status(h) for h in hosts]

    def _last(self, host: Host) -> tuple[float, bool, str] | None:
        url = host.url.rstrip("/")
        _, outcome = self._eligibility.host_record(url)
        with self._lock:
            probed = self._probes.get(url)
        known = [x for x in (outcome, probed) if x is not None]
        return max(known, key=lambda x: x[0]) if known else None

    def _age(self, host: Host) -> float:
        last = self._last(host)
        return time.time() - last[0] if last else float("inf")

    def _probe(self, host: Host, timeout_s: float) -> None:
        import httpx

        key = os.environ.get(host.api_key_env) if host.api_key_env else None
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        try:
            httpx.get(host.url.rstrip("/") + "/models", headers=headers,
                      timeout=timeout_s).raise_for_status()
            result = (time.time(), True, "answered a probe")
        except httpx.HTTPError as exc:
            result = (time.time(), False, f"{type(exc).__name__}: {exc}")
        with self._lock:
            self._probes[host.url.rstrip("/")] = result

    def _status(self, host: Host) -> HostStatus:
        url = host.url.rstrip("/")
        backoff, _ = self._eligibility.host_record(url)
        last = self._last(host)
        state: Literal["up", "down", "backing-off", "unknown"]
        if backoff is not None:
            state = "backing-off"
        elif last is None:
            state = "unknown"
        else:
            state = "up" if last[1] else "down"
        members = [m.expert for m in self._universe.members
                   if self._eligibility.host_of(m.expert) == url]
        return HostStatus(name=host.name, url=host.url, kind=host.kind, state=state,
                          backoff_s=round(backoff, 1) if backoff is not None else None,
                          last_check=last[0] if last else None, detail=last[2] if last else "",
                          members=members)
