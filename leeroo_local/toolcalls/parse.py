"""An expert's text as content and tool calls, piece by piece as it streams.

One parser reads every family (formats.py): `<tool_call>` blocks (Hermes, Qwen2.5),
`[TOOL_CALLS]` arrays (Mistral), `<|python_tag|>` and a bare JSON object at the start of the
answer (Llama 3.x), whose markers never collide. A bare object is a call only when its `name` is
one of the offered functions: otherwise it is the answer's text. Text that might be the start of
a marker is held back until it is known; a call's name goes out as soon as it is read and its
arguments as they arrive, so a client sees OpenAI's deltas (id and name, then pieces of the
arguments).
"""

from __future__ import annotations

import json
from typing import Callable, Union

from .calls import ToolCall, ToolCallDelta, new_call_id

MARKERS = ("<tool_call>", "[TOOL_CALLS]", "<|python_tag|>")
_CLOSE = "</tool_call>"
_ARGS = ("arguments", "parameters")
_WS = " \t\r\n"

Event = Union[str, ToolCallDelta]


def _ws(s: str, i: int) -> int:
    while i < len(s) and s[i] in _WS:
        i += 1
    return i


def _string_end(s: str, i: int) -> int | None:
    """The index after the JSON string starting at s[i] (a quote); None while it is open."""
    j = i + 1
    while j < len(s):
        if s[j] == "\\":
            j += 2
            continue
        if s[j] == '"':
            return j + 1
        j += 1
    return None


def _value_end(s: str, i: int) -> int | None:
    """The index after the JSON value starting at s[i]; None while it is incomplete."""
    if s[i] == '"':
        return _string_end(s, i)
    if s[i] in "{[":
        depth, j = 0, i
        while j < len(s):
            c = s[j]
            if c == '"':
                end = _string_end(s, j)
                if end is None:
                    return None
                j = end
                continue
            if c in "{[":
                depth += 1
            elif c in "}]":
                depth -= 1
                if depth == 0:
                    return j + 1
            j += 1
        return None
    j = i
    while j < len(s) and s[j] not in ",}]" + _WS:
        j += 1
    return j if j < len(s) else None


class _Malformed(Exception):
    pass


def _scan_object(s: str, i: int) -> tuple[dict[str, tuple[int, int | None]], int | None]:
    """The fields of the JSON object starting at s[i] read so far, {key: (value start, value end
    or None while it is incomplete)}, and the index after the object once it is closed."""
    fields: dict[str, tuple[int, int | None]] = {}
    j = i + 1
    while True:
        j = _ws(s, j)
        if j >= len(s):
            return fields, None
        if s[j] == "}":
            return fields, j + 1
        if s[j] == ",":
            j += 1
            continue
        if s[j] != '"':
            raise _Malformed
        key_end = _string_end(s, j)
        if key_end is None:
            return fields, None
        key = json.loads(s[j:key_end])
        j = _ws(s, key_end)
        if j >= len(s):
            return fields, None
        if s[j] != ":":
            raise _Malformed
        j = _ws(s, j + 1)
        if j >= len(s):
            return fields, None
        end = _value_end(s, j)
        fields[key] = (j, end)
        if end is None:
            return fields, None
        j = end


def _held_back(text: str) -> int:
    """How many characters at the end of `text` might begin a marker."""
    for n in range(min(len(text), max(map(len, MARKERS)) - 1), 0, -1):
        if any(m.startswith(text[-n:]) for m in MARKERS):
            return n
    return 0


class _Open:
    """The call being read: its place in the answer, id, and what of it was sent."""

    def __init__(self, index: int, call_id: str):
        self.index, self.id = index, call_id
        self.name: str | None = None
        self.sent_args = 0
        self.args_text = ""


class ToolCallParser:
    """Feed it the expert's text; it gives back content pieces (str) and ToolCallDeltas.

    `names`: the functions offered (a bare JSON object is a call only when it names one).
    `parallel`: False keeps the first call only.
    """

    def __init__(self, names: list[str], parallel: bool = True,
                 new_id: Callable[[], str] = new_call_id):
        self.names = set(names)
        self.parallel = parallel
        self._new_id = new_id
        self._buf = ""
        self._mode = "text"  # text, bare (a leading "{": call or text?), calls, done
        self._marker = ""
        self._in_array = False
        self._open: _Open | None = None
        self._answered = False  # visible text was given out
        self.calls: list[ToolCall] = []
        self._content: list[str] = []

    @property
    def content(self) -> str:
        return "".join(self._content)

    def feed(self, text: str) -> list[Event]:
        self._buf += text
        out: list[Event] = []
        self._step(out, final=False)
        return out

    def finish(self) -> list[Event]:
        out: list[Event] = []
        self._step(out, final=True)
        if self._mode == "calls" and self._open is not None and self._open.name is not None:
            self._close_call(out)  # cut short (max_tokens): the call as far as it came
        elif self._mode in ("bare", "calls") and self._buf.strip():
            self._text(out, self._buf)
        elif self._mode == "text" and self._buf:
            self._text(out, self._buf)
        self._buf = ""
        return out

    # -- internals ------------------------------------------------------------------------

    def _text(self, out: list[Event], text: str) -> None:
        if text:
            out.append(text)
            self._content.append(text)
            self._answered = self._answered or bool(text.strip())

    def _step(self, out: list[Event], final: bool) -> None:
        while True:
            before = (self._mode, len(self._buf))
            if self._mode == "text":
                self._step_text(out, final)
            elif self._mode == "bare":
                self._step_bare(out, final)
            elif self._mode == "calls":
                self._step_calls(out, final)
            else:
                self._buf = ""
            if (self._mode, len(self._buf)) == before:
                return

    def _step_text(self, out: list[Event], final: bool) -> None:
        buf = self._buf
        if not self._answered and not self.calls:
            stripped = buf.lstrip()
            if not stripped and not final:
                return  # only blank so far: the answer may still open with a call
            if stripped.startswith("{"):
                self._mode = "bare"
                return
        hits = [(buf.find(m), m) for m in MARKERS if m in buf]
        if hits:
            at, marker = min(hits)
            self._text(out, buf[:at])
            self._buf = buf[at + len(marker):]
            self._mode, self._marker, self._in_array = "calls", marker, False
            return
        keep = 0 if final else _held_back(buf)
        self._text(out, buf[:len(buf) - keep])
        self._buf = buf[len(buf) - keep:]

    def _step_bare(self, out: list[Event], final: bool) -> None:
        start = _ws(self._buf, 0)
        try:
            fields, end = _scan_object(self._buf, start)
        except _Malformed:
            fields, end = {}, len(self._buf)
        name = fields.get("name")
        if name is not None and name[1] is not None:
            value = _decoded(self._buf[name[0]:name[1]])
            if isinstance(value, str) and value in self.names:
                self._mode, self._marker = "calls", "json"
                return
            end = end or len(self._buf)
        if end is not None or final:
            self._answered = True  # a JSON answer, not a call
            self._mode = "text"

    def _step_calls(self, out: list[Event], final: bool) -> None:
        buf = self._buf
        if self._open is not None:
            self._read_call(out, final)
            return
        i = _ws(buf, 0)
        rest = buf[i:]
        if not rest:
            return
        if self._marker == "<tool_call>":
            for tag in (_CLOSE, "<tool_call>"):
                if rest.startswith(tag):
                    self._buf = rest[len(tag):]
                    return
                if tag.startswith(rest) and not final:
                    return  # a tag, perhaps, still arriving
        elif self._marker == "[TOOL_CALLS]":
            if rest[0] == "[" and not self._in_array:
                self._in_array = True
                self._buf = rest[1:]
                return
            if rest[0] in ",]" and self._in_array:
                self._in_array = rest[0] == ","
                self._buf = rest[1:]
                return
        elif rest[0] == ";":
            self._buf = rest[1:]
            return
        if rest[0] == "{" and (self.parallel or not self.calls):
            self._buf = rest
            self._open = _Open(len(self.calls), self._new_id())
            self._read_call(out, final)
            return
        if self.calls and not self.parallel and rest[0] == "{":
            self._mode = "done"  # parallel_tool_calls false: the first call only
            return
        self._mode = "text"  # what follows the calls is text
        self._answered = True
        self._buf = rest

    def _read_call(self, out: list[Event], final: bool) -> None:
        call, buf = self._open, self._buf
        assert call is not None
        try:
            fields, end = _scan_object(buf, 0)
        except _Malformed:
            self._open = None
            self._mode, self._answered = "text", True
            if call.name is None:
                self._buf = self._marker + buf if self._marker != "json" else buf
            return
        if call.name is None and "name" in fields and fields["name"][1] is not None:
            start, stop = fields["name"]
            name = _decoded(buf[start:stop])
            if not isinstance(name, str):
                self._open, self._mode, self._answered = None, "text", True
                return
            call.name = name
            out.append(ToolCallDelta(index=call.index, id=call.id, name=name))
        key = next((k for k in _ARGS if k in fields), None)
        if call.name is not None and key is not None:
            start, stop = fields[key]
            if buf[start] == '"':  # arguments given as a JSON string: sent once complete
                if stop is not None and not call.sent_args:
                    value = _decoded(buf[start:stop])
                    text = value if isinstance(value, str) else json.dumps(value)
                    call.args_text, call.sent_args = text, len(text)
                    out.append(ToolCallDelta(index=call.index, arguments=text))
            else:
                text = buf[start:stop if stop is not None else len(buf)]
                if len(text) > call.sent_args:
                    out.append(ToolCallDelta(index=call.index, arguments=text[call.sent_args:]))
                    call.sent_args, call.args_text = len(text), text
        if end is not None:
            if call.name is None:
                self._open, self._mode, self._answered = None, "text", True
                return
            self._buf = buf[end:]
            self._close_call(out)

    def _close_call(self, out: list[Event]) -> None:
        call = self._open
        assert call is not None and call.name is not None
        if not call.sent_args:
            call.args_text = "{}"
            out.append(ToolCallDelta(index=call.index, arguments="{}"))
        self.calls.append(ToolCall(id=call.id, name=call.name, arguments=call.args_text))
        self._open = None


def _decoded(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return None
