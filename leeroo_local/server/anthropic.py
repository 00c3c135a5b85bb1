"""POST /v1/messages and /v1/messages/count_tokens: Anthropic's Messages API, for agents that speak
it (Claude Code and others), routed like chat.

Whole answers are a `message` object; streams follow Anthropic's event sequence (message_start,
content_block_start, ping, content_block_delta..., content_block_stop, message_delta,
message_stop; an `error` event once started). Errors before that use Anthropic's error shape
(errors.py). The route, timings and energy travel in a `leeroo` object, as on the OpenAI paths.
Tools are OpenAI's under the hood (toolcalls/): `tools` and `tool_choice` are converted to
them, `tool_use` and `tool_result` blocks of the history to an assistant's calls and tool
messages, and the calls an expert makes come back as `tool_use` blocks (streamed as
`input_json_delta` events), with stop_reason `tool_use`.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from ..backends.base import Sampling
from ..limits import MAX_MESSAGES, MAX_NAME_CHARS, MAX_STOP, MAX_STOP_CHARS, MAX_VOCAB
from ..runtime.service import Result
from ..toolcalls import ToolCallDelta, Tools
from . import requests as convert
from .completions import Call, answer, leeroo_of, privacy_header
from .errors import ApiError, anthropic_body, describe, error_response
from .refusals import mark_reached
from .schemas import Leeroo

router = APIRouter()

_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)


class Block(_Request):
    """A content block: text, an assistant's tool_use, a user's tool_result."""

    type: str = Field(max_length=MAX_NAME_CHARS, description="text, image, tool_use, ...")
    text: str | None = Field(default=None, description="The text of a `text` block.")
    id: str | None = Field(default=None, max_length=MAX_NAME_CHARS,
                           description="A tool_use block's id.")
    name: str | None = Field(default=None, max_length=MAX_NAME_CHARS,
                             description="The tool a tool_use block calls.")
    input: dict | None = Field(default=None, description="A tool_use block's arguments.")
    tool_use_id: str | None = Field(default=None, max_length=MAX_NAME_CHARS,
                                    description="The call a tool_result block answers.")
    content: str | Annotated[list[dict], Field(max_length=MAX_MESSAGES)] | None = Field(
        default=None, description="A tool_result's content: text or text blocks.")
    is_error: bool | None = Field(default=None, description="A tool_result that is an error.")


class AnthropicMessage(_Request):
    """One turn of the conversation."""

    role: Literal["user", "assistant"] = Field(description="Who speaks.")
    content: str | Annotated[list[Block], Field(max_length=MAX_MESSAGES)] = Field(
        description="Text, or a list of content blocks.")


class MessagesRequest(_Request):
    """POST /v1/messages (and, without max_tokens, /v1/messages/count_tokens)."""

    model: str = Field(max_length=MAX_NAME_CHARS,
                       description="An expert of the universe, or `auto` (any other name routes "
                                   "as auto: agents send their own model names).")
    messages: list[AnthropicMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    max_tokens: int = Field(ge=1, description="Most tokens to generate (capped at the context).")
    system: str | Annotated[list[Block], Field(max_length=MAX_MESSAGES)] | None = None
    stop_sequences: Annotated[list[Annotated[str, Field(max_length=MAX_STOP_CHARS)]],
                              Field(max_length=MAX_STOP)] | None = None
    temperature: float | None = Field(default=None, ge=0, le=1)
    top_p: float | None = Field(default=None, gt=0, le=1)
    top_k: int | None = Field(default=None, ge=0, le=MAX_VOCAB)
    stream: bool = False
    tools: Annotated[list[dict], Field(max_length=MAX_MESSAGES)] | None = None
    tool_choice: dict | None = Field(default=None, description="auto, any, tool (with name) or "
                                                               "none.")
    metadata: dict | None = None


class CountRequest(MessagesRequest):
    """POST /v1/messages/count_tokens: max_tokens is not asked for."""

    max_tokens: int = Field(default=1, ge=1)


class TextBlock(BaseModel):
    type: Literal["text"] = "text"
    text: str


class ToolUseBlock(BaseModel):
    type: Literal["tool_use"] = "tool_use"
    id: str
    name: str
    input: dict


class AnthropicUsage(BaseModel):
    input_tokens: int
    output_tokens: int
    cache_read_input_tokens: int = 0  # the prompt cache's share of the input


class MessageObject(BaseModel):
    """A whole answer: Anthropic's `message`, plus leeroo-local's `leeroo`."""

    id: str
    type: Literal["message"] = "message"
    role: Literal["assistant"] = "assistant"
    content: list[TextBlock | ToolUseBlock]
    model: str
    stop_reason: str | None
    stop_sequence: str | None = None
    usage: AnthropicUsage
    leeroo: Leeroo | None = None


def _text(content, where: str) -> str:
    if isinstance(content, str):
        return content
    other = next((b.type for b in content if b.type != "text"), None)
    if other is not None:
        raise ApiError(400, f"{where}: content blocks of type {other!r} are not supported here: "
                            f"the experts read text only", param=where, code="unsupported_value")
    return "\n\n".join(b.text or "" for b in content)


def _result_text(block: Block) -> str:
    content = block.content
    if isinstance(content, list):
        content = "\n\n".join(str(b.get("text", "")) for b in content if b.get("type") == "text")
    return ("error: " if block.is_error else "") + (content or "")


def _turn(m: AnthropicMessage, where: str) -> list[dict]:
    """One Anthropic turn as OpenAI-shaped messages: tool results become `tool` messages, an
    assistant's tool_use blocks its calls."""
    if isinstance(m.content, str):
        return [{"role": m.role, "content": m.content}]
    results = [b for b in m.content if b.type == "tool_result"]
    uses = [b for b in m.content if b.type == "tool_use"]
    if m.role == "user" and uses or m.role == "assistant" and results:
        raise ApiError(400, f"{where}: tool_use blocks belong to the assistant, tool_result "
                            f"blocks to the user", param=where, code="invalid_value")
    rest = [b for b in m.content if b.type not in ("tool_result", "tool_use")]
    text = _text(rest, where)
    out = [{"role": "tool", "tool_call_id": b.tool_use_id or "", "content": _result_text(b)}
           for b in results]
    if uses:
        out.append({"role": "assistant", "content": text, "tool_calls": [
            {"id": b.id or "", "type": "function",
             "function": {"name": b.name or "", "arguments": json.dumps(b.input or {})}}
            for b in uses]})
    elif text or not results:
        out.append({"role": m.role, "content": text})
    return out


def chat_messages(req: MessagesRequest) -> list[dict]:
    """The conversation as the service takes it (the system prompt first)."""
    out = [{"role": "system", "content": _text(req.system, "system")}] if req.system else []
    for i, m in enumerate(req.messages):
        out += _turn(m, f"messages.{i}.content")
    return out


_CHOICE = {"auto": "auto", "any": "required", "none": "none"}


def tools_of(req: MessagesRequest) -> Tools | None:
    """Anthropic's tools and tool_choice as OpenAI's (a 400 naming the field when they cannot
    be)."""
    functions = []
    for i, tool in enumerate(req.tools or []):
        if tool.get("type") not in (None, "custom"):
            raise ApiError(400, f"tools.{i}: {tool.get('type')!r} tools run on Anthropic's "
                                f"servers; only client tools (name, input_schema) are served "
                                f"here", param=f"tools.{i}", code="unsupported_value")
        functions.append({"type": "function", "function": {
            "name": tool.get("name"), "description": tool.get("description") or "",
            "parameters": tool.get("input_schema") or {"type": "object"}}})
    choice = req.tool_choice or {"type": "auto"}
    kind = choice.get("type")
    picked = ({"type": "function", "function": {"name": choice.get("name")}} if kind == "tool"
              else _CHOICE.get(str(kind), choice))
    return convert.tools(functions or None, picked,
                         parallel=not choice.get("disable_parallel_tool_use", False))


def sampling(req: MessagesRequest, n_ctx: int, defaults, notes: list[str]) -> Sampling:
    """The request's sampling over the configured defaults; max_tokens capped at the context."""
    return convert.over_defaults(defaults, req.max_tokens, n_ctx, notes,
                                 temperature=req.temperature, top_p=req.top_p, top_k=req.top_k,
                                 stop=req.stop_sequences)


def _event(kind: str, data: dict) -> str:
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def _usage(r: Result) -> dict:
    return {"input_tokens": r.tokens.get("prompt", 0),
            "output_tokens": r.tokens.get("completion", 0),
            "cache_read_input_tokens": r.tokens.get("cached", 0)}


class MessagesShape:
    """Anthropic's message object and its stream of events. A stream keeps one content block
    open at a time (call.state): text pieces go to a text block, each call to a tool_use block
    of its own."""

    prefix = "msg"

    def whole(self, call: Call, r: Result) -> MessageObject:
        blocks: list[TextBlock | ToolUseBlock] = []
        if r.answer.strip() or not r.tool_calls:
            blocks.append(TextBlock(text=r.answer))
        blocks += [ToolUseBlock(id=c.id, name=c.name, input=c.input()) for c in r.tool_calls]
        return MessageObject(id=call.id, content=blocks, model=r.expert,
                             stop_reason=_STOP.get(r.finish_reason, "end_turn"),
                             usage=AnthropicUsage(**_usage(r)), leeroo=leeroo_of(call, r))

    def opening(self, call: Call, model: str) -> str:
        message = MessageObject(id=call.id, content=[], model=model, stop_reason=None,
                                usage=AnthropicUsage(input_tokens=0, output_tokens=0))
        text = _event("message_start", {"type": "message_start",
                                        "message": message.model_dump(exclude={"leeroo"})})
        call.state.update(open=None, next=0)
        if not call.forced_tool:  # an answer that may be text opens with its text block
            text += self._start(call, "text", {"type": "text", "text": ""})
        return text + _event("ping", {"type": "ping"})

    def _start(self, call: Call, kind: str, block: dict) -> str:
        text = self._stop(call)
        index = call.state["next"]
        call.state.update(open=(kind, index), next=index + 1)
        return text + _event("content_block_start", {"type": "content_block_start",
                                                     "index": index, "content_block": block})

    def _stop(self, call: Call) -> str:
        opened = call.state.get("open")
        if opened is None:
            return ""
        call.state["open"] = None
        return _event("content_block_stop", {"type": "content_block_stop", "index": opened[1]})

    def piece(self, call: Call, model: str, text: str) -> str:
        if not text:
            return ""
        opened = call.state.get("open")
        out = "" if opened and opened[0] == "text" else self._start(
            call, "text", {"type": "text", "text": ""})
        return out + _event("content_block_delta", {
            "type": "content_block_delta", "index": call.state["open"][1],
            "delta": {"type": "text_delta", "text": text}})

    def tool(self, call: Call, model: str, delta: ToolCallDelta) -> str:
        out = ""
        if delta.id is not None:
            out = self._start(call, "tool_use", {"type": "tool_use", "id": delta.id,
                                                 "name": delta.name, "input": {}})
        if not delta.arguments or call.state.get("open") is None:
            return out
        return out + _event("content_block_delta", {
            "type": "content_block_delta", "index": call.state["open"][1],
            "delta": {"type": "input_json_delta", "partial_json": delta.arguments}})

    def closing(self, call: Call, r: Result) -> str:
        delta = {"stop_reason": _STOP.get(r.finish_reason, "end_turn"), "stop_sequence": None}
        return (self._stop(call)
                + _event("message_delta", {"type": "message_delta", "delta": delta,
                                           "usage": _usage(r),
                                           "leeroo": leeroo_of(call, r).model_dump()}))

    def end(self) -> str:
        return _event("message_stop", {"type": "message_stop"})

    def failed(self, exc: BaseException) -> str:
        status, body, _ = describe(exc)
        return _event("error", anthropic_body(status, body.error.message))

    def error_response(self, exc: BaseException, headers: dict[str, str]) -> Response:
        return error_response(exc, headers, path="/v1/messages")


@router.post("/v1/messages", response_model=None)
async def messages(req: MessagesRequest, request: Request) -> Response:
    """Answer on the named expert, or on the one the policy picks (`auto`, or a model name this
    server does not know, such as an agent's default `claude-...`)."""
    state = request.app.state.leeroo
    expert = _expert(state, req.model)
    convert.check_text(req)
    conversation = chat_messages(req)
    offered = tools_of(req)
    notes: list[str] = [] if expert == req.model else [
        f"model {req.model!r} is not served here: routed as auto"]
    chosen = sampling(req, state.service.universe.n_ctx, state.service.settings.sampling, notes)
    group = request.headers.get("x-leeroo-conversation")

    privacy = privacy_header(request)

    def start(cancel):
        return state.service.chat(conversation, expert, chosen, cancel=cancel, conversation=group,
                                  privacy=privacy, tools=offered)

    mark_reached(request)
    return await answer(request, MessagesShape(), req.stream, False, start, notes,
                        forced_tool=bool(offered and offered.forced))


@router.post("/v1/messages/count_tokens")
def count_tokens(req: CountRequest, request: Request) -> dict:
    """Tokens the prompt takes on the expert that would answer it (its own chat template and
    tokenizer; the expert is loaded if it is not)."""
    state = request.app.state.leeroo
    convert.check_text(req)
    route, n = state.service.count_tokens(chat_messages(req), _expert(state, req.model),
                                          tools_of(req))
    return {"input_tokens": n, "leeroo": {"expert": route.expert, "quant": route.quant}}


def _expert(state, model: str) -> str:
    """A member of the universe by name, else `auto`: agents send names of their own models."""
    return model if model in state.service.universe.ids() else "auto"

