"""POST /v1/messages and /v1/messages/count_tokens: Anthropic's Messages API, for agents that speak
it (Claude Code and others), routed like chat.

Whole answers are a `message` object; streams follow Anthropic's event sequence (message_start,
content_block_start, ping, content_block_delta..., content_block_stop, message_delta,
message_stop; an `error` event once started). Errors before that use Anthropic's error shape
(errors.py). The route, timings and energy travel in a `leeroo` object, as on the OpenAI paths.
Tool use is refused with a 400 naming the capability until an expert of the universe can call
tools.
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
from . import requests as convert
from .completions import Call, answer, leeroo_of, privacy_header
from .errors import ApiError, anthropic_body, describe, error_response
from .refusals import mark_reached
from .schemas import Leeroo

router = APIRouter()

_STOP = {"stop": "end_turn", "length": "max_tokens"}


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)


class Block(_Request):
    """A content block; only text can be answered (tool_use and tool_result need tools)."""

    type: str = Field(max_length=MAX_NAME_CHARS, description="text, image, tool_use, ...")
    text: str | None = Field(default=None, description="The text of a `text` block.")


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
    metadata: dict | None = None


class CountRequest(MessagesRequest):
    """POST /v1/messages/count_tokens: max_tokens is not asked for."""

    max_tokens: int = Field(default=1, ge=1)


class TextBlock(BaseModel):
    type: Literal["text"] = "text"
    text: str


class AnthropicUsage(BaseModel):
    input_tokens: int
    output_tokens: int
    cache_read_input_tokens: int = 0  # the prompt cache's share of the input


class MessageObject(BaseModel):
    """A whole answer: Anthropic's `message`, plus leeroo-local's `leeroo`."""

    id: str
    type: Literal["message"] = "message"
    role: Literal["assistant"] = "assistant"
    content: list[TextBlock]
    model: str
    stop_reason: str | None
    stop_sequence: str | None = None
    usage: AnthropicUsage
    leeroo: Leeroo | None = None


def _text(content, where: str) -> str:
    if isinstance(content, str):
        return content
    other = next((b.type for b in content if b.type != "text"), None)
    if other in ("tool_use", "tool_result"):
        raise ApiError(400, f"{where}: `{other}` blocks need an expert that calls tools, and "
                            f"this universe has none", param=where, code="unsupported_capability")
    if other is not None:
        raise ApiError(400, f"{where}: content blocks of type {other!r} are not supported: the "
                            f"experts read text only", param=where, code="unsupported_value")
    return "\n\n".join(b.text or "" for b in content)


def chat_messages(req: MessagesRequest) -> list[dict]:
    """The conversation as the service takes it (the system prompt first)."""
    if req.tools:
        raise ApiError(400, "tools: no expert of this universe calls tools", param="tools",
                       code="unsupported_capability")
    out = [{"role": "system", "content": _text(req.system, "system")}] if req.system else []
    out += [{"role": m.role, "content": _text(m.content, f"messages.{i}.content")}
            for i, m in enumerate(req.messages)]
    return out


def sampling(req: MessagesRequest, n_ctx: int, defaults, notes: list[str]) -> Sampling:
    """The request's sampling over the configured defaults; max_tokens capped at the context."""
    return convert.over_defaults(defaults, req.max_tokens, n_ctx, notes,
                                 temperature=req.temperature, top_p=req.top_p, top_k=req.top_k,
                                 stop=req.stop_sequences)


def _event(kind: str, data: dict) -> str:
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


class MessagesShape:
    """Anthropic's message object and its stream of events."""

    prefix = "msg"

    def whole(self, call: Call, r: Result) -> MessageObject:
        return MessageObject(id=call.id, content=[TextBlock(text=r.answer)], model=r.expert,
                             stop_reason=_STOP.get(r.finish_reason, "end_turn"),
                             usage=AnthropicUsage(input_tokens=r.tokens.get("prompt", 0),
                                                  output_tokens=r.tokens.get("completion", 0),
                                                  cache_read_input_tokens=r.tokens.get("cached", 0)),
                             leeroo=leeroo_of(call, r))

    def opening(self, call: Call, model: str) -> str:
        message = MessageObject(id=call.id, content=[], model=model, stop_reason=None,
                                usage=AnthropicUsage(input_tokens=0, output_tokens=0))
        return (_event("message_start", {"type": "message_start",
                                         "message": message.model_dump(exclude={"leeroo"})})
                + _event("content_block_start", {"type": "content_block_start", "index": 0,
                                                 "content_block": {"type": "text", "text": ""}})
                + _event("ping", {"type": "ping"}))

    def piece(self, call: Call, model: str, text: str) -> str:
        if not text:
            return ""
        return _event("content_block_delta", {"type": "content_block_delta", "index": 0,
                                              "delta": {"type": "text_delta", "text": text}})

    def closing(self, call: Call, r: Result) -> str:
        usage = {"input_tokens": r.tokens.get("prompt", 0),
                 "output_tokens": r.tokens.get("completion", 0),
                 "cache_read_input_tokens": r.tokens.get("cached", 0)}
        delta = {"stop_reason": _STOP.get(r.finish_reason, "end_turn"), "stop_sequence": None}
        return (_event("content_block_stop", {"type": "content_block_stop", "index": 0})
                + _event("message_delta", {"type": "message_delta", "delta": delta, "usage": usage,
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
    notes: list[str] = [] if expert == req.model else [
        f"model {req.model!r} is not served here: routed as auto"]
    chosen = sampling(req, state.service.universe.n_ctx, state.service.settings.sampling, notes)
    group = request.headers.get("x-leeroo-conversation")

    privacy = privacy_header(request)

    def start(cancel):
        return state.service.chat(conversation, expert, chosen, cancel=cancel, conversation=group,
                                  privacy=privacy)

    mark_reached(request)
    return await answer(request, MessagesShape(), req.stream, False, start, notes)


@router.post("/v1/messages/count_tokens")
def count_tokens(req: CountRequest, request: Request) -> dict:
    """Tokens the prompt takes on the expert that would answer it (its own chat template and
    tokenizer; the expert is loaded if it is not)."""
    state = request.app.state.leeroo
    convert.check_text(req)
    route, n = state.service.count_tokens(chat_messages(req), _expert(state, req.model))
    return {"input_tokens": n, "leeroo": {"expert": route.expert, "quant": route.quant}}


def _expert(state, model: str) -> str:
    """A member of the universe by name, else `auto`: agents send names of their own models."""
    return model if model in state.service.universe.ids() else "auto"

