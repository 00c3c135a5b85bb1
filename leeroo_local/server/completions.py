"""POST /v1/chat/completions and /v1/completions: whole answers and server-sent event streams.

Each request runs the service's blocking generator in its own thread (bridge.EventPump). The
route is known before anything is sent, so it goes into the response headers. A stream starts
(status 200, a first chunk) on its first token, or after `first_byte_s` at the latest, so that
a client waiting for a queued or cold expert is not left silent; until then a failure still gets
its own status code, after it the failure arrives as an error event in the stream.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import AsyncIterator, Callable, Protocol

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel

from ..errors import LeerooError
from ..runtime.service import Progress, Result, Route, TextEvent
from ..toolcalls import ToolCallDelta
from . import requests as convert
from .refusals import mark_reached
from .bridge import END, TIMEOUT, EventPump
from .errors import ApiError, describe, error_response
from .schemas import (AssistantMessage, ChatChoice, ChatCompletion, ChatCompletionChunk,
                      ChatCompletionRequest, ChunkChoice, Completion, CompletionChoice,
                      CompletionRequest, Delta, Leeroo, PromptTokensDetails, Usage)

router = APIRouter()

_DISCONNECT_POLL_S = 0.25  # how often a whole (non-streamed) answer checks for its client
GONE = "the client went away"
_MARK = "\x00leeroo-text\x00"  # stands for a piece's text in its rendered chunk (OpenAIEvents.piece)


@dataclass
class Call:
    """One request in flight: the id and time every chunk repeats, and what the client asked."""

    id: str
    created: int
    include_usage: bool
    notes: list[str]
    forced_tool: bool = False
    """The answer is a tool call whatever the expert writes (tool_choice required or named)."""
    state: dict = field(default_factory=dict)
    """What a stream's shape keeps between events (Anthropic's open content block)."""


def _finish(result: Result) -> str:
    return (result.finish_reason if result.finish_reason in ("stop", "length", "tool_calls")
            else "stop")


def leeroo_of(call: Call, r: Result) -> Leeroo:
    return Leeroo(expert=r.expert, quant=r.quant, route=r.route, timings=r.timings,
                  energy=r.energy, finish_reason=r.finish_reason, notes=call.notes)


def _usage(r: Result) -> Usage:
    prompt, completion = r.tokens.get("prompt", 0), r.tokens.get("completion", 0)
    return Usage(prompt_tokens=prompt, completion_tokens=completion,
                 total_tokens=prompt + completion,
                 prompt_tokens_details=PromptTokensDetails(cached_tokens=r.tokens.get("cached", 0)))


class Shape(Protocol):
    """How one endpoint writes its answer: whole, or as server-sent events (opening, pieces,
    closing, end, or an error once the stream has started), and its errors before that."""

    prefix: str

    def whole(self, call: Call, r: Result) -> BaseModel: ...
    def opening(self, call: Call, model: str) -> str: ...
    def piece(self, call: Call, model: str, text: str) -> str: ...
    def tool(self, call: Call, model: str, delta: ToolCallDelta) -> str: ...
    def closing(self, call: Call, r: Result) -> str: ...
    def end(self) -> str: ...
    def failed(self, exc: BaseException) -> str: ...
    def error_response(self, exc: BaseException, headers: dict[str, str]) -> Response: ...


class OpenAIEvents:
    """OpenAI's way of streaming: `data:` lines, a usage chunk when asked for, `[DONE]`; its
    error objects."""

    def opening(self, call, model):
        return _data(self.first(call, model))

    def piece(self, call, model, text):
        """A token's chunk: the request's chunk rendered once with a marker for the text, then
        only the text is JSON-encoded per token (a pydantic model per token cost more CPU than
        anything else between the expert and the client, and on a machine whose cores decode,
        that CPU is taken from the expert)."""
        if not text:
            return ""
        parts = getattr(self, "_parts", None)
        if parts is None or parts[0] != (call.id, model):
            rendered = _data(self.chunk(call, model, _MARK))
            head, _, tail = rendered.partition(json.dumps(_MARK))
            parts = self._parts = ((call.id, model), head, tail)
        return parts[1] + json.dumps(text, ensure_ascii=False) + parts[2]

    def tool(self, call, model, delta):
        return ""  # only chat answers call tools

    def closing(self, call, r):
        return _data(self.last(call, r)) + (_data(self.usage(call, r)) if call.include_usage else "")

    def end(self):
        return "data: [DONE]\n\n"

    def failed(self, exc):
        return _data(describe(exc)[1]) + self.end()

    def error_response(self, exc, headers):
        return error_response(exc, headers)


class ChatShape(OpenAIEvents):
    """chat.completion and chat.completion.chunk objects."""

    prefix = "chatcmpl"

    def whole(self, call, r):
        calls = [c.openai() for c in r.tool_calls] or None
        content = None if calls and not r.answer.strip() else r.answer
        message = AssistantMessage(content=content, tool_calls=calls)
        return ChatCompletion(id=call.id, created=call.created, model=r.expert,
                              choices=[ChatChoice(message=message, finish_reason=_finish(r))],
                              usage=_usage(r), leeroo=leeroo_of(call, r))

    def tool(self, call, model, delta):
        return _data(self._chunk(call, model, [ChunkChoice(delta=Delta(
            tool_calls=[delta.openai()]))]))

    def _chunk(self, call, model, choices, **extra):
        return ChatCompletionChunk(id=call.id, created=call.created, model=model,
                                   choices=choices, **extra)

    def first(self, call, model):
        return self._chunk(call, model, [ChunkChoice(delta=Delta(role="assistant", content=""))])

    def chunk(self, call, model, text):
        return self._chunk(call, model, [ChunkChoice(delta=Delta(content=text))])

    def last(self, call, r):
        return self._chunk(call, r.expert, [ChunkChoice(delta=Delta(), finish_reason=_finish(r))],
                           leeroo=leeroo_of(call, r))

    def usage(self, call, r):
        return self._chunk(call, r.expert, [], usage=_usage(r))


class CompletionShape(OpenAIEvents):
    """text_completion objects (OpenAI streams them in the same shape)."""

    prefix = "cmpl"

    def _obj(self, call, model, choices, **extra):
        return Completion(id=call.id, created=call.created, model=model, choices=choices, **extra)

    def whole(self, call, r):
        choice = CompletionChoice(text=r.answer, finish_reason=_finish(r))
        return self._obj(call, r.expert, [choice], usage=_usage(r), leeroo=leeroo_of(call, r))

    def first(self, call, model):
        return self._obj(call, model, [CompletionChoice(text="", finish_reason=None)])

    def chunk(self, call, model, text):
        return self._obj(call, model, [CompletionChoice(text=text, finish_reason=None)])

    def last(self, call, r):
        return self._obj(call, r.expert, [CompletionChoice(text="", finish_reason=_finish(r))],
                         leeroo=leeroo_of(call, r))

    def usage(self, call, r):
        return self._obj(call, r.expert, [], usage=_usage(r))


def route_headers(route: Route, notes: list[str] | None = None) -> dict[str, str]:
    """Which expert answers and why, before the body starts (ASCII JSON: headers are latin-1):
    with the experts it fell back from, and why the prompt was kept on this machine."""
    headers = {"x-leeroo-expert": route.expert, "x-leeroo-quant": route.quant,
               "x-leeroo-route": json.dumps(route.model_dump(), ensure_ascii=True,
                                            separators=(",", ":"))}
    if route.failed:
        headers["x-leeroo-fallback"] = json.dumps([f.model_dump() for f in route.failed],
                                                  ensure_ascii=True, separators=(",", ":"))
    if route.privacy and route.privacy.local_only:
        headers["x-leeroo-privacy"] = f"local-only; rule={route.privacy.rule}"
    if notes:
        headers["x-leeroo-notes"] = json.dumps(notes, ensure_ascii=True)
    return headers


PRIVACY_HEADER = "x-leeroo-privacy"


def privacy_header(request: Request) -> str | None:
    """The request's own privacy choice (local-only or allow-remote), or None."""
    value = request.headers.get(PRIVACY_HEADER)
    if value is None:
        return None
    if value not in ("local-only", "allow-remote"):
        raise ApiError(400, f"{PRIVACY_HEADER}: {value!r}; send local-only or allow-remote",
                       param=PRIVACY_HEADER, code="invalid_value")
    return value


def _data(obj: BaseModel) -> str:
    return f"data: {obj.model_dump_json()}\n\n"


def _comment(event: Progress) -> str | None:
    if event.stage == "loading":
        return f": loading {event.route.expert} {event.route.quant}\n\n"
    if event.stage == "generating" and event.load_s:
        return f": loaded {event.route.expert} in {event.load_s:.2f} s\n\n"
    return None


async def _whole(request: Request, pump: EventPump, shape: Shape, call: Call,
                 headers: dict[str, str]) -> Response:
    result = None
    loop = asyncio.get_running_loop()
    check_at = loop.time() + _DISCONNECT_POLL_S
    while True:
        event = await pump.get(_DISCONNECT_POLL_S)
        # By the clock, not only when nothing arrives: tokens arrive faster than the poll.
        if loop.time() >= check_at:
            check_at = loop.time() + _DISCONNECT_POLL_S
            if await request.is_disconnected():
                pump.stop(GONE)  # nobody to answer: free the expert (logged as cancelled)
                return Response(status_code=499)
        if event is TIMEOUT:
            continue
        if event is END:
            break
        if isinstance(event, BaseException):
            raise event
        if isinstance(event, Result):
            result = event
    if result is None:
        raise LeerooError("the request ended without an answer")
    if result.route.failed:  # it fell back: the headers name the expert that answered
        headers = route_headers(result.route, call.notes)
    return JSONResponse(shape.whole(call, result).model_dump(), headers=headers)


async def _stream(pump: EventPump, shape: Shape, call: Call, route: Route,
                  headers: dict[str, str], first_byte_s: float, keepalive_s: float) -> Response:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + first_byte_s
    early: list = []
    while True:  # before the status is sent: a failure here still gets its own status code
        event = await pump.get(max(0.0, deadline - loop.time()))
        if event is TIMEOUT:
            break
        if isinstance(event, BaseException):
            raise event
        early.append(event)
        if isinstance(event, Progress) and event.stage == "routed" and event.route is not route:
            route = event.route  # it fell back before the stream started: say which answers
            headers = route_headers(route, call.notes)
        if event is END or isinstance(event, (TextEvent, ToolCallDelta, Result)):
            break
    body = _sse(pump, early, shape, call, route.expert, keepalive_s)
    return StreamingResponse(body, media_type="text/event-stream",
                             headers={**headers, "cache-control": "no-cache",
                                      "x-accel-buffering": "no"})


def _render(event, shape: Shape, call: Call, model: str) -> tuple[str, bool]:
    """One event of the stream as SSE text (maybe none), and whether the stream ends with it."""
    if event is TIMEOUT:
        return ": keep-alive\n\n", False
    if event is END:
        return shape.end(), True
    if isinstance(event, BaseException):
        return shape.failed(event), True
    if isinstance(event, Progress):
        return _comment(event) or "", False
    if isinstance(event, TextEvent):
        return shape.piece(call, model, event.text), False
    if isinstance(event, ToolCallDelta):
        return shape.tool(call, model, event), False
    if isinstance(event, Result):
        return shape.closing(call, event), False
    return "", False


async def _sse(pump: EventPump, early: list, shape: Shape, call: Call, model: str,
               keepalive_s: float) -> AsyncIterator[str]:
    """The event stream; a client that goes away cancels the generation (starlette cancels
    this generator when it sees the disconnect, and `finally` stops the pump)."""
    try:
        # The opening chunk and what arrived before the status (the first token, usually)
        # go out in one write.
        text, done = shape.opening(call, model), False
        for event in early:
            more, done = _render(event, shape, call, model)
            text += more
            if done:
                break
        yield text
        pump.delivered()  # written: the expert may go on (EventPump's hold_first)
        while not done:
            text, done = _render(await pump.get(keepalive_s), shape, call, model)
            while not done and pump.ready():  # what else arrived meanwhile: one write for all
                more, done = _render(pump.get_nowait(), shape, call, model)
                text += more
            if text:
                yield text
            pump.delivered()
    finally:
        pump.stop(GONE)  # no effect once the answer is complete


async def answer(request: Request, shape: Shape, stream: bool, include_usage: bool,
                  start: Callable, notes: list[str], forced_tool: bool = False) -> Response:
    state = request.app.state.leeroo
    call = Call(id=f"{shape.prefix}-{uuid.uuid4().hex}", created=int(time.time()),
                include_usage=include_usage, notes=notes, forced_tool=forced_tool)
    pump = EventPump(start, name=call.id, hold_first=stream, threads=state.threads)
    state.inflight.track(pump)
    headers: dict[str, str] = {}
    try:
        first = await pump.get()
        if isinstance(first, BaseException):
            raise first
        route = first.route  # the service's first event is always Progress("routed")
        headers = route_headers(route, notes)
        if stream:
            return await _stream(pump, shape, call, route, headers,
                                 state.settings.first_byte_s, state.settings.keepalive_s)
        return await _whole(request, pump, shape, call, headers)
    except Exception as exc:
        pump.stop(GONE)
        return shape.error_response(exc, headers)
    except BaseException:  # the server is cancelling this request
        pump.stop("the server cancelled the request")
        raise


@router.post("/v1/chat/completions", response_model=None)
async def chat_completions(req: ChatCompletionRequest, request: Request) -> Response:
    """Chat on the named expert, or on the one the policy picks for `auto`."""
    state = request.app.state.leeroo
    expert = state.resolve(req.model)
    convert.check_text(req)
    messages = convert.chat_messages(req)
    offered = convert.tools(req.tools, req.tool_choice, req.parallel_tool_calls)
    notes: list[str] = []
    sampling = convert.sampling(req, state.service.universe.n_ctx, state.service.settings.sampling,
                                notes)
    conversation = request.headers.get("x-leeroo-conversation")  # groups turns in the log

    privacy, keep = privacy_header(request), convert.keep_alive(req.keep_alive)

    def start(cancel):
        return state.service.chat(messages, expert, sampling, cancel=cancel,
                                  conversation=conversation, privacy=privacy, keep_alive_s=keep,
                                  tools=offered)

    mark_reached(request)
    return await answer(request, ChatShape(), req.stream, req.include_usage, start, notes,
                        forced_tool=bool(offered and offered.forced))


@router.post("/v1/completions", response_model=None)
async def completions(req: CompletionRequest, request: Request) -> Response:
    """Continue a plain prompt (OpenAI's legacy completions)."""
    state = request.app.state.leeroo
    expert = state.resolve(req.model)
    convert.check_text(req)
    prompt = convert.completion_prompt(req)
    notes: list[str] = []
    sampling = convert.sampling(req, state.service.universe.n_ctx, state.service.settings.sampling,
                                notes)

    privacy, keep = privacy_header(request), convert.keep_alive(req.keep_alive)

    def start(cancel):
        return state.service.complete(prompt, expert, sampling, cancel=cancel, privacy=privacy,
                                      keep_alive_s=keep, suffix=req.suffix,
                                      conversation=request.headers.get("x-leeroo-conversation"))

    mark_reached(request)
    return await answer(request, CompletionShape(), req.stream, req.include_usage, start, notes)
