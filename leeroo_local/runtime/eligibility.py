"""Which members may answer a request: one that has the capabilities the request needs (a chat
goes to an instruct expert whenever the universe has one), not one that already failed it, not
a host backing off after a failure, and no remote member for a prompt that must stay here.

Fallback: when the routed expert fails before its first token (its load fails for memory or a
bad file, its worker crashes, its host is down or times out), the request goes to the next
member the policy scores best among those still eligible. Privacy: a setting and a request
header (`local-only`, `allow-remote`), and the detector (leeroo_local.privacy) that keeps a
prompt holding private content here whatever the policy prefers; a conversation kept local once
stays local.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field

from .. import capabilities as caps
from ..catalog import Catalog, OpenAISource
from ..errors import (BudgetTooSmall, CorruptModel, ExpertCrashed, MissingCapability,
                      NoExpertLeft, NotPresent, RemoteError, UnsupportedModel)
from ..privacy import detect
from ..universe import Member

FALLBACK = (BudgetTooSmall, CorruptModel, UnsupportedModel, NotPresent, ExpertCrashed, RemoteError)
"""Failures of an expert, not of the request: another member may answer."""

BACKOFF_S = 30.0
"""Seconds a host that failed (every remote expert it serves) is left out of routing."""

Privacy = Literal["allow-remote", "local-only"]


class Failure(BaseModel):
    """An expert that failed a request before its first token."""

    expert: str = Field(description="The expert that failed.")
    quant: str = Field(description="Its quantization.")
    error: str = Field(description="Why, as the error's class and message.")


class PrivacyDecision(BaseModel):
    """Whether the request was kept on this machine, and by what."""

    local_only: bool = Field(description="Only experts on this machine may answer.")
    rule: str = Field(default="", description="Why: the detector's rule (never the matched "
                                              "text), the request's header, the setting, or an "
                                              "earlier turn of the conversation.")


@dataclass
class Eligibility:
    """The state that outlives a request: hosts backing off, conversations kept local."""

    catalog: Catalog
    backoff_s: float = BACKOFF_S

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._backoff: dict[str, float] = {}  # by host URL: monotonic time it ends
        self._outcomes: dict[str, tuple[float, bool, str]] = {}  # by host URL: (time, ok, detail)
        self._local_conversations: set[str] = set()
        self._asked_log: set[str] = set()  # conversations whose earlier turns were looked up
        self._capabilities: dict[str, set[str]] = {}

    def capabilities(self, member: Member) -> set[str]:
        """The member's capabilities (capabilities.py), read once its file is here."""
        key = f"{member.expert}:{member.quant}"
        with self._lock:
            known = self._capabilities.get(key)
        if known is not None:
            return known
        from ..locate import local_path

        expert = self.catalog.get(member.expert)
        path = None if expert.remote else local_path(expert, expert.quant(member.quant))
        found = caps.of_expert(expert, path)
        if path is not None or expert.remote:
            with self._lock:
                self._capabilities[key] = found
        return found

    def needs(self, members: list[Member], op: str, fim: bool = False,
              tools: bool = False) -> set[str]:
        """What the request needs of its expert: a chat needs an instruct expert when the
        universe has one (else a base model continues the conversation, and the route says so);
        fill-in-the-middle needs FIM tokens, a chat with tools (or calls and results in its
        history) a template that renders tools (MissingCapability when no member has them)."""
        if op == "embed":
            return self._some_member(members, caps.EMBEDDINGS, "model", "embeddings need an "
                                     "embedding model (one that pools)", "is one",
                                     "an embedding GGUF")
        if fim:
            return self._some_member(members, caps.FIM, "suffix", "fill-in-the-middle needs an "
                                     "expert with FIM tokens", "has them",
                                     "a code GGUF with FIM tokens")
        if tools:
            lacking = [m.expert for m in members if caps.TOOLS not in self.capabilities(m)]
            if len(lacking) == len(members):
                raise MissingCapability(
                    f"tools: tool calls need an expert whose chat template renders tools, and "
                    f"none of {', '.join(lacking)} has one: "
                    f"{self._to_pull(caps.TOOLS, 'an instruct GGUF whose template renders tools')}"
                    f"; or send the request without tools (or with tool_choice none)",
                    field="tools")
            return {caps.CHAT, caps.TOOLS}
        if op == "chat" and any(caps.CHAT in self.capabilities(m) for m in members):
            return {caps.CHAT}
        return set()

    def _some_member(self, members: list[Member], capability: str, field: str, need: str,
                     verb: str, otherwise: str) -> set[str]:
        """{capability} when a member has it; else MissingCapability naming the members and
        what to pull (`_to_pull`)."""
        if not any(capability in self.capabilities(m) for m in members):
            raise MissingCapability(
                f"{field}: {need}, and none of {', '.join(m.expert for m in members)} {verb}: "
                f"{self._to_pull(capability, otherwise)}", field=field)
        return {capability}

    def _to_pull(self, capability: str, otherwise: str) -> str:
        """What a user can do about a capability no member has: the catalog experts that state
        it, else a kind of GGUF to add."""
        known = caps.in_catalog(self.catalog, capability)
        if known:
            return (f"the catalog's {' or '.join(known)} has it (`leeroo-local pull {known[0]}`, "
                    f"then put it in the universe)")
        return f"add {otherwise} (`leeroo-local add REPO`) and put it in the universe"

    def privacy(self, texts: list[str], setting: Privacy, header: str | None,
                conversation: str | None,
                kept_before: Callable[[str], bool] = lambda conversation: False
                ) -> PrivacyDecision:
        """local-only when the header or the setting says so, when the detector finds private
        content in the prompt, or when an earlier turn of the conversation was kept local (in
        this process, or, by `kept_before`, in the request log of an earlier one)."""
        wanted = header or setting
        if wanted == "local-only":
            decision = PrivacyDecision(local_only=True, rule="header" if header else "setting")
        elif conversation and (conversation in self._local_conversations
                               or self._first_time(conversation) and kept_before(conversation)):
            decision = PrivacyDecision(local_only=True, rule="conversation")
        else:
            found = next((f for f in map(detect, texts) if f is not None), None)
            decision = PrivacyDecision(local_only=found is not None,
                                       rule=found.rule if found else "")
        if decision.local_only and conversation:
            with self._lock:
                self._local_conversations.add(conversation)
        return decision

    def _first_time(self, conversation: str) -> bool:
        """True once per conversation: the log of an earlier process is read at its first turn
        here, not on every request (later turns kept local are in the set)."""
        with self._lock:
            first = conversation not in self._asked_log
            self._asked_log.add(conversation)
        return first

    def host_of(self, expert: str) -> str | None:
        """The URL of the host that serves a remote expert (None: this machine)."""
        source = self.catalog.get(expert).source
        return source.base_url.rstrip("/") if isinstance(source, OpenAISource) else None

    def failed(self, member_expert: str, exc: BaseException) -> None:
        """A host that failed is left out for a while, with every expert it serves."""
        host = self.host_of(member_expert)
        if isinstance(exc, RemoteError) and host:
            with self._lock:
                self._backoff[host] = time.monotonic() + self.backoff_s
                self._outcomes[host] = (time.time(), False, f"{type(exc).__name__}: {exc}")

    def answered(self, member_expert: str) -> None:
        """A remote expert answered: its host is up."""
        host = self.host_of(member_expert)
        if host:
            with self._lock:
                self._outcomes[host] = (time.time(), True, f"answered through {member_expert}")

    def host_record(self, url: str) -> tuple[float | None, tuple[float, bool, str] | None]:
        """(Seconds of back-off left or None, the last request's outcome there or None)."""
        url = url.rstrip("/")
        with self._lock:
            left = self._backoff.get(url, 0.0) - time.monotonic()
            return (left if left > 0 else None), self._outcomes.get(url)

    def check_tools(self, route) -> None:
        """MissingCapability when the request named an expert whose template renders no tools."""
        if caps.TOOLS not in self.capabilities(Member(expert=route.expert, quant=route.quant)):
            raise MissingCapability(f"tools: {route.expert} cannot call tools (its chat template "
                                    f"does not render them); name an expert that can, or send "
                                    f"model auto", field="tools")

    def check_named(self, expert: str, kept: PrivacyDecision) -> None:
        """NoExpertLeft when the request named a remote expert for a prompt kept here."""
        if kept.local_only and self.catalog.get(expert).remote:
            raise NoExpertLeft(f"the prompt must stay on this machine ({kept.rule}) and {expert} "
                               f"is remote")

    def test(self, failed: list[Failure], local_only: bool,
             needs: set[str] | frozenset[str] = frozenset()) -> Callable[[Member], bool]:
        """The predicate the router applies to the universe's members."""
        gone = {f.expert for f in failed}
        now = time.monotonic()
        with self._lock:
            backing_off = {h for h, until in self._backoff.items() if until > now}

        def eligible(member: Member) -> bool:
            if member.expert in gone or (backing_off and self.host_of(member.expert) in backing_off):
                return False
            have = self.capabilities(member)
            if needs and not needs <= have:
                return False
            if caps.EMBEDDINGS in have and caps.EMBEDDINGS not in needs:
                return False  # an embedding model writes no text
            return not (local_only and self.catalog.get(member.expert).remote)

        return eligible
