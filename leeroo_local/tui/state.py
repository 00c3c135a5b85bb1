"""What the chat remembers between messages, kept on the app: the conversation's id in the
request log, the turns sent back to the model, and the routing choice for the next message.

No Textual here, so the rules (which turns count, how a logged conversation is reopened) are
plain Python.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field

from ..runtime.service import Energy, Result, Route, Timings

AUTO = "auto"


def new_conversation_id() -> str:
    return uuid.uuid4().hex[:12]


@dataclass
class ChatState:
    """The conversation on screen. Only answered turns are kept as context: a prompt that
    failed (too long, no expert fits) is shown but not sent again with the next message."""

    conversation: str = field(default_factory=new_conversation_id)
    messages: list[dict] = field(default_factory=list)
    expert: str = AUTO

    def request(self, prompt: str) -> list[dict]:
        """The messages to send for `prompt`: the answered turns, then the new question."""
        return [*self.messages, {"role": "user", "content": prompt}]

    def add_turn(self, prompt: str, answer: str) -> None:
        self.messages += [{"role": "user", "content": prompt},
                          {"role": "assistant", "content": answer}]

    def start_new(self) -> None:
        """A fresh conversation (a new log id); the routing choice is kept."""
        self.conversation = new_conversation_id()
        self.messages = []

    def reopen(self, conversation: str, rows: list[dict]) -> None:
        """Continue a logged conversation: its context is the last answered request's messages
        followed by that request's answer."""
        self.conversation = conversation
        self.messages = []
        answered = [r for r in rows if r.get("error") is None and r.get("response") is not None]
        if answered:
            last = answered[-1]
            sent = json.loads(last["messages"]) if last.get("messages") else [
                {"role": "user", "content": last["prompt"]}]
            self.messages = [*sent, {"role": "assistant", "content": last["response"]}]


def turn_result(row: dict) -> Result | None:
    """A logged request as the Result the panels show; None when it failed."""
    if row.get("error") is not None or row.get("response") is None or not row.get("expert"):
        return None
    route = Route(expert=row["expert"], quant=row.get("quant") or "",
                  scores=json.loads(row["route_scores"]) if row.get("route_scores") else {},
                  reason=row.get("route_reason") or "", route_s=row.get("route_s") or 0.0)
    return Result(
        answer=row["response"], expert=route.expert, quant=route.quant, route=route,
        timings=Timings(route_s=route.route_s, load_s=row.get("load_s") or 0.0,
                        ttft_s=row.get("ttft_s") or 0.0, total_s=row.get("total_s") or 0.0,
                        tokens_per_s=row.get("tokens_per_s") or 0.0),
        tokens={"prompt": row.get("prompt_tokens") or 0,
                "completion": row.get("completion_tokens") or 0},
        energy=Energy(joules=row.get("energy_j") or 0.0,
                      method=row.get("energy_method") or "estimated",
                      source="from the request log"),
        finish_reason=row.get("finish_reason") or "stop",
    )
