"""POST /v1/embeddings: vectors from the universe's embedding model, for editors' codebase
indexing. Never from a chat model: without an embedding model in the universe, a 400 says so."""

from __future__ import annotations

import base64
import struct
from typing import Annotated, Literal

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from ..limits import MAX_NAME_CHARS
from ..runtime.service import EmbedResult, Energy, Route
from .errors import ApiError

router = APIRouter()

MAX_INPUTS = 2048  # OpenAI's limit on one request's inputs


class EmbeddingRequest(BaseModel):
    """OpenAI's request: text, or a list of texts (token arrays are refused)."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    model: str = Field(max_length=MAX_NAME_CHARS, description="An embedding expert, or auto.")
    input: str | Annotated[list[str], Field(min_length=1, max_length=MAX_INPUTS)] | \
        Annotated[list[int], Field(max_length=MAX_INPUTS)] | \
        Annotated[list[Annotated[list[int], Field(max_length=MAX_INPUTS)]],
                  Field(max_length=MAX_INPUTS)] = Field(description="What to embed.")
    encoding_format: Literal["float", "base64"] = Field(
        default="float", description="Numbers, or little-endian float32 bytes in base64.")
    dimensions: int | None = Field(default=None, ge=1, le=65536,
                                   description="Only the model's own size is served.")


class EmbeddingItem(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class EmbeddingUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingInfo(BaseModel):
    """leeroo-local's own: which model, why, what it cost."""

    expert: str
    quant: str
    route: Route
    load_s: float
    total_s: float
    energy: Energy


class EmbeddingResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[EmbeddingItem]
    model: str
    usage: EmbeddingUsage
    leeroo: EmbeddingInfo


def _texts(req: EmbeddingRequest) -> list[str]:
    if isinstance(req.input, str):
        return [req.input]
    if req.input and not isinstance(req.input[0], str):
        raise ApiError(400, "input: token arrays are not supported; send text",
                       param="input", code="unsupported_value")
    return list(req.input)  # type: ignore[arg-type]


def _encode(vector: list[float], fmt: str) -> list[float] | str:
    if fmt == "float":
        return vector
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


@router.post("/v1/embeddings")
async def embeddings(req: EmbeddingRequest, request: Request) -> EmbeddingResponse:
    """One vector per input, in order, from the embedding model."""
    from . import requests as convert
    from .refusals import mark_reached

    state = request.app.state.leeroo
    expert = state.resolve(req.model)
    convert.check_text(req)
    texts = _texts(req)
    mark_reached(request)
    result: EmbedResult = await run_in_threadpool(state.service.embed, texts, expert)
    size = len(result.vectors[0]) if result.vectors else 0
    if req.dimensions is not None and req.dimensions != size:
        raise ApiError(400, f"dimensions: {result.expert} makes vectors of {size}",
                       param="dimensions", code="unsupported_value")
    return EmbeddingResponse(
        data=[EmbeddingItem(index=i, embedding=_encode(v, req.encoding_format))
              for i, v in enumerate(result.vectors)],
        model=result.expert, usage=EmbeddingUsage(prompt_tokens=result.tokens,
                                                  total_tokens=result.tokens),
        leeroo=EmbeddingInfo(expert=result.expert, quant=result.quant, route=result.route,
                             load_s=result.load_s, total_s=result.total_s, energy=result.energy))
