"""POST /infill: llama-server's fill-in-the-middle API, which editors' autocomplete sends
(llama.vscode, llama.vim and others): `input_prefix`, `input_suffix`, `input_extra` (other files
as context), `prompt` (the text typed after the prefix), `n_predict`. Routed to an expert with
FIM tokens; answered in llama-server's shape (`content`, `stop`, token counts; streamed as
`data:` lines), with leeroo-local's `leeroo` object."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from ..limits import MAX_MESSAGES, MAX_NAME_CHARS, MAX_VOCAB, SEED_MAX, SEED_MIN
from ..runtime.service import Result
from . import requests as convert
from .completions import Call, answer, leeroo_of, privacy_header
from .errors import describe, error_response
from .refusals import mark_reached
from .schemas import Leeroo

router = APIRouter()


class ExtraChunk(BaseModel):
    model_config = ConfigDict(extra="ignore")

    filename: str = Field(default="", max_length=4096)
    text: str = Field(default="")


class InfillRequest(BaseModel):
    """llama-server's /infill body (fields it has that change nothing here are ignored)."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    model: str = Field(default="auto", max_length=MAX_NAME_CHARS,
                       description="An expert with FIM tokens, or auto.")
    input_prefix: str = Field(default="", description="The text before the cursor.")
    input_suffix: str = Field(default="", description="The text after the cursor.")
    input_extra: Annotated[list[ExtraChunk], Field(max_length=MAX_MESSAGES)] = Field(
        default_factory=list, description="Other files, as context before the prefix.")
    prompt: str = Field(default="", description="Text after the prefix (the current line).")
    n_predict: int | None = Field(default=None, ge=-1, description="Most tokens (-1: context).")
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_k: int | None = Field(default=None, ge=0, le=MAX_VOCAB)
    top_p: float | None = Field(default=None, gt=0, le=1)
    min_p: float | None = Field(default=None, ge=0, le=1)
    seed: int | None = Field(default=None, ge=SEED_MIN, le=SEED_MAX)
    stream: bool = False


class InfillResponse(BaseModel):
    """llama-server's answer, plus the route, timings and energy."""

    content: str
    stop: bool = True
    model: str
    tokens_predicted: int
    tokens_evaluated: int
    leeroo: Leeroo | None = None


def _data(obj: dict) -> str:
    return f"data: {json.dumps(obj, separators=(',', ':'))}\n\n"


class InfillShape:
    """llama-server's infill objects, whole and streamed."""

    prefix = "infill"

    def whole(self, call: Call, r: Result) -> InfillResponse:
        return InfillResponse(content=r.answer, model=r.expert,
                              tokens_predicted=r.tokens.get("completion", 0),
                              tokens_evaluated=r.tokens.get("prompt", 0), leeroo=leeroo_of(call, r))

    def opening(self, call: Call, model: str) -> str:
        return ""

    def piece(self, call: Call, model: str, text: str) -> str:
        return _data({"content": text, "stop": False}) if text else ""

    def tool(self, call: Call, model: str, delta) -> str:
        return ""  # an infill calls no tools

    def closing(self, call: Call, r: Result) -> str:
        return _data({**self.whole(call, r).model_dump(mode="json"), "content": ""})

    def end(self) -> str:
        return ""

    def failed(self, exc: BaseException) -> str:
        return _data(describe(exc)[1].model_dump())

    def error_response(self, exc: BaseException, headers: dict[str, str]) -> Response:
        return error_response(exc, headers)


def _prefix(req: InfillRequest) -> str:
    """The prefix with the other files before it, as a reader of the repository would see
    them (each under its name), and the typed line after it."""
    extra = "".join(f"{c.filename}\n{c.text}\n\n" if c.filename else f"{c.text}\n\n"
                    for c in req.input_extra)
    return extra + req.input_prefix + req.prompt


@router.post("/infill", response_model=None)
async def infill(req: InfillRequest, request: Request) -> Response:
    """Fill in the middle on the named expert, or on the one the policy picks among those with
    FIM tokens."""
    state = request.app.state.leeroo
    expert = state.resolve(req.model)
    convert.check_text(req)
    n_ctx = state.service.universe.n_ctx
    limit = n_ctx if req.n_predict in (None, -1) else max(1, req.n_predict)
    sampling = convert.over_defaults(state.service.settings.sampling, limit, n_ctx, None,
                                     temperature=req.temperature, top_k=req.top_k,
                                     top_p=req.top_p, min_p=req.min_p, seed=req.seed)
    prefix, privacy = _prefix(req), privacy_header(request)

    def start(cancel):
        return state.service.complete(prefix, expert, sampling, cancel=cancel, privacy=privacy,
                                      suffix=req.input_suffix,
                                      conversation=request.headers.get("x-leeroo-conversation"))

    mark_reached(request)
    return await answer(request, InfillShape(), req.stream, False, start, [])
