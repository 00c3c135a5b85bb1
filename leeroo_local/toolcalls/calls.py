"""What a request offers (`Tools`) and what an expert answers (`ToolCall`, streamed as
`ToolCallDelta`s), in OpenAI's terms: the Anthropic endpoint converts to and from them."""

from __future__ import annotations

import hashlib
import json
import secrets
import string
from dataclasses import dataclass
from typing import Literal

_ALNUM = string.ascii_letters + string.digits
ID_LENGTH = 9
"""Mistral's templates refuse any other length (`Tool call IDs should be alphanumeric strings
with length 9!`); 9 alphanumerics are valid ids for every other template and for OpenAI's and
Anthropic's clients too."""


def new_call_id() -> str:
    """A fresh tool-call id: 9 letters and digits."""
    return "".join(secrets.choice(_ALNUM) for _ in range(ID_LENGTH))


def template_id(call_id: str) -> str:
    """An id as a template that checks ids reads it: ours unchanged, any other (a client's own,
    `call_...` or `toolu_...`) mapped to 9 alphanumerics, the same each time it appears."""
    if len(call_id) == ID_LENGTH and call_id.isalnum():
        return call_id
    digest = hashlib.sha256(call_id.encode("utf-8")).digest()
    return "".join(_ALNUM[b % len(_ALNUM)] for b in digest[:ID_LENGTH])


@dataclass(frozen=True)
class Tools:
    """The functions a request offers and how the expert may use them.

    `functions`: OpenAI tool objects ({"type": "function", "function": {name, description,
    parameters}}), as the chat templates read them. `choice`: "auto" (the expert decides),
    "required" (at least one call, forced by grammar), or "function" (the one named `name`,
    forced). `tool_choice: none` never gets here: its tools are not offered at all.
    """

    functions: tuple[dict, ...]
    choice: Literal["auto", "required", "function"] = "auto"
    name: str | None = None
    parallel: bool = True

    @property
    def names(self) -> list[str]:
        return [f["function"]["name"] for f in self.functions]

    @property
    def forced(self) -> bool:
        """True when the answer must be a call (required, or a named function)."""
        return self.choice != "auto"

    def schema_of(self, name: str) -> dict:
        """The parameters schema of one function ({"type": "object"} when it gives none)."""
        for f in self.functions:
            if f["function"]["name"] == name:
                params = f["function"].get("parameters")
                return params if isinstance(params, dict) and params else {"type": "object"}
        raise KeyError(name)


@dataclass
class ToolCall:
    """One call of a function: its id, name and arguments (a JSON object as text)."""

    id: str
    name: str
    arguments: str = ""

    def openai(self) -> dict:
        return {"id": self.id, "type": "function",
                "function": {"name": self.name, "arguments": self.arguments or "{}"}}

    def input(self) -> dict:
        """The arguments as an object (Anthropic's `input`); {} when they do not parse as one."""
        try:
            value = json.loads(self.arguments or "{}")
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}


@dataclass
class ToolCallDelta:
    """A piece of a streamed call: the first of each call carries its id and name, the later ones
    more of its arguments (OpenAI's chunk shape)."""

    index: int
    arguments: str = ""
    id: str | None = None
    name: str | None = None

    def openai(self) -> dict:
        out: dict = {"index": self.index}
        if self.id is not None:
            out.update(id=self.id, type="function")
        function: dict = {"arguments": self.arguments}
        if self.name is not None:
            function = {"name": self.name, **function}
        out["function"] = function
        return out


def has_tool_turns(messages: list[dict]) -> bool:
    """True when the conversation holds an assistant's calls or a tool's result (only a template
    that renders tools can show them)."""
    return any(m.get("tool_calls") or m.get("role") == "tool" for m in messages)


def for_template(messages: list[dict]) -> list[dict]:
    """OpenAI-shaped messages (arguments as JSON text) the way Hugging Face chat templates expect
    them: each call's arguments as an object (the templates write them with `tojson`), ids of 9
    alphanumerics, a tool result's content as text."""
    out = []
    for m in messages:
        m = dict(m)
        if m.get("tool_calls"):
            m["tool_calls"] = [_call_for_template(c) for c in m["tool_calls"]]
            if m.get("content") is None:
                m["content"] = ""
        if m.get("role") == "tool" and m.get("tool_call_id"):
            m["tool_call_id"] = template_id(str(m["tool_call_id"]))
        if m.get("content") is None:
            m["content"] = ""
        out.append(m)
    return out


def _call_for_template(call: dict) -> dict:
    function = dict(call.get("function") or {})
    args = function.get("arguments")
    if isinstance(args, str):
        try:
            function["arguments"] = json.loads(args) if args.strip() else {}
        except ValueError:
            pass  # not JSON: the template writes the text as the model wrote it
    return {"id": template_id(str(call.get("id") or new_call_id())), "type": "function",
            "function": function}
