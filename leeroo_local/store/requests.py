"""The request log: one row per request, written by the service from any thread.

DB rows stay separate from domain objects: the service hands over a Result (or an error) and
this module decides how it is stored. A write that fails (disk full, database locked or made
read-only) never reaches the request: the row waits in memory and is written with the next one
that succeeds; past `BACKLOG` waiting rows the oldest are counted as lost.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from ..textcheck import printable
from .db import open_db

BACKLOG = 10_000
"""Rows kept in memory while the database cannot be written."""


@dataclass(frozen=True)
class LogState:
    """How the request log is doing, for /health: `ok`, or `degraded` with why."""

    status: str
    pending: int = 0
    lost: int = 0
    reason: str = ""


class RequestLog:
    """A thread-safe writer/reader of the `requests` table."""

    def __init__(self, path: str | Path | None = None):
        self._db = open_db(path, shared=True)
        self._lock = threading.Lock()
        self._pending: deque[dict] = deque()
        self._lost = 0
        self._reason = ""

    def record(self, *, kind: str, prompt: str, messages: list[dict] | None = None,
               result=None, route=None, error: str | None = None, client: str = "",
               conversation: str | None = None, partial: list[str] | None = None) -> int | None:
        """Store one request; returns its row id (None while the database cannot be written: the
        row waits). `result` is a service.Result when it succeeded; `partial`, the text pieces a
        failed or cancelled request had sent (one per token). Never raises for the database."""
        row = {
            "created_at": datetime.now(timezone.utc).isoformat(), "client": client, "kind": kind,
            "conversation": conversation, "prompt": prompt,
            "messages": json.dumps(messages) if messages is not None else None,
            "error": error,
        }
        route = route or (result.route if result is not None else None)
        if route is not None:
            row.update(expert=route.expert, quant=route.quant, route_reason=route.reason,
                       route_scores=json.dumps(route.scores), route_s=route.route_s)
            if getattr(route, "failed", None):
                row["fallback"] = json.dumps([f.model_dump() for f in route.failed])
            privacy = getattr(route, "privacy", None)
            if privacy is not None and privacy.local_only:
                row["privacy"] = privacy.rule
        if result is not None:
            t = result.timings
            calls = getattr(result, "tool_calls", None)  # kept beside the text they came with
            response = result.answer + (json.dumps([c.openai() for c in calls]) if calls else "")
            row.update(response=response, load_s=t.load_s, ttft_s=t.ttft_s,
                       total_s=t.total_s, tokens_per_s=t.tokens_per_s,
                       prompt_tokens=result.tokens.get("prompt"),
                       completion_tokens=result.tokens.get("completion"),
                       energy_j=result.energy.joules, energy_method=result.energy.method,
                       finish_reason=result.finish_reason)
        if result is None and partial:
            row.update(response="".join(partial), completion_tokens=len(partial))
        row = {k: printable(v) if isinstance(v, str) else v for k, v in row.items()}
        with self._lock:
            self._pending.append(row)
            return self._flush()

    def _flush(self) -> int | None:
        """Write the waiting rows, oldest first; the id of the last, or None while the database
        cannot be written (the failure is reported once, on stderr and in `state`)."""
        last = None
        while self._pending:
            try:
                last = self._db["requests"].insert(self._pending[0]).last_pk
            except (sqlite3.InterfaceError, OverflowError, ValueError):
                last = None  # this row cannot be stored anywhere: lost, the others go on
                self._lost += 1
            except (sqlite3.Error, OSError) as exc:
                self._degrade(f"{type(exc).__name__}: {exc}")
                return None
            self._pending.popleft()
        if self._reason:
            print(f"leeroo-local: request log writable again ({self._lost} rows lost)",
                  file=sys.stderr)
            self._reason = ""
        return last

    def _degrade(self, reason: str) -> None:
        while len(self._pending) > BACKLOG:
            self._pending.popleft()
            self._lost += 1
        if not self._reason:
            print(f"leeroo-local: cannot write the request log ({reason}); rows are kept in "
                  f"memory and written when it can be", file=sys.stderr)
        self._reason = reason

    def state(self) -> LogState:
        """ok, or degraded: rows waiting in memory, rows lost, and the last failure."""
        with self._lock:
            if not self._reason and not self._pending:
                return LogState("ok", lost=self._lost)
            return LogState("degraded", len(self._pending), self._lost, self._reason)

    def recent(self, n: int = 20, conversation: str | None = None) -> list[dict]:
        """The latest n requests, newest first (optionally of one conversation)."""
        where, args = ("conversation = ?", [conversation]) if conversation else (None, None)
        with self._lock:
            return list(self._db["requests"].rows_where(where, args, order_by="id desc", limit=n))

    def conversations(self, n: int = 50) -> list[dict]:
        """Conversations with their first prompt, last time and number of requests, most recent
        first (for a history browser)."""
        sql = ("select c.conversation, r.prompt, c.last_at, c.turns from (select conversation, "
               "min(id) as first_id, max(id) as last_id, max(created_at) as last_at, "
               "count(*) as turns from requests where conversation is not null "
               "group by conversation) c join requests r on r.id = c.first_id "
               "order by c.last_id desc limit ?")
        with self._lock:
            return [dict(zip(("conversation", "first_prompt", "last_at", "turns"), r))
                    for r in self._db.execute(sql, [n]).fetchall()]

    def turns(self, conversation: str) -> list[dict]:
        """Every request of one conversation, oldest first, to reopen it (errors included)."""
        with self._lock:
            return list(self._db["requests"].rows_where("conversation = ?", [conversation],
                                                        order_by="id"))

    def count(self) -> int:
        with self._lock:
            return self._db["requests"].count

    def close(self) -> None:
        with self._lock:
            self._db.close()
