"""OpenAI's request and response shapes, as far as `serve` speaks them.

Requests accept OpenAI's fields, and llama-server's sampling extensions (top_k, min_p,
repeat_penalty, repeat_last_n); ones that change nothing here (user, ...) are ignored; ones
whose meaning cannot be honoured (n > 1, logprobs, echo) are refused with a 400 naming
the field (by `requests.py`, which turns a request into service arguments). Every number, list and
short string has a bound (limits.py; a 422 names the field and the bound); text is bounded by the
body limit, then by the expert's context. Responses add one object that OpenAI's schemas leave room for (none of them sets
additionalProperties to false): `leeroo`, with the route, timings and energy of the answer.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..limits import (MAX_CONTEXT, MAX_MESSAGES, MAX_NAME_CHARS, MAX_STOP_CHARS, MAX_VOCAB,
                      SEED_MAX, SEED_MIN)
from ..runtime.service import Energy, Route, Timings

StopString = Annotated[str, Field(max_length=MAX_STOP_CHARS)]


def _omit_none(value) -> bool:
    return value is None


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)


class StreamOptions(_Request):
    """Options of a streamed response."""

    include_usage: bool = Field(
        default=False, description="Send one last chunk with token usage and no choices.")


class TextPart(_Request):
    """One part of a message's content; only text parts can be answered."""

    type: str = Field(max_length=MAX_NAME_CHARS, description="Part kind; only `text` is supported.")
    text: str | None = Field(default=None, description="The text of a `text` part.")


class FunctionCall(_Request):
    """The function an assistant called, and its arguments (JSON text)."""

    name: str = Field(max_length=MAX_NAME_CHARS, description="The function's name.")
    arguments: str = Field(default="{}", description="Its arguments: a JSON object as text.")


class MessageToolCall(_Request):
    """A call an assistant made, in the history."""

    id: str = Field(max_length=MAX_NAME_CHARS, description="The call's id (a tool result "
                                                           "names it).")
    type: Literal["function"] = Field(default="function", description="Always function.")
    function: FunctionCall = Field(description="What was called.")


class Message(_Request):
    """One chat message."""

    role: Literal["system", "developer", "user", "assistant", "tool"] = Field(
        description="Who speaks; `developer` is treated as `system`; `tool` is a call's result.")
    content: str | Annotated[list[TextPart], Field(max_length=MAX_MESSAGES)] | None = Field(
        default=None, description="Text, or a list of text parts (joined).")
    name: str | None = Field(default=None, max_length=MAX_NAME_CHARS,
                             description="Accepted and ignored.")
    tool_calls: Annotated[list[MessageToolCall], Field(max_length=MAX_MESSAGES)] | None = Field(
        default=None, description="An assistant's calls.")
    tool_call_id: str | None = Field(default=None, max_length=MAX_NAME_CHARS,
                                     description="A tool result: the call it answers.")


class JsonSchemaFormat(_Request):
    """OpenAI's `response_format.json_schema`: the schema the answer must follow."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    name: str = Field(default="answer", max_length=MAX_NAME_CHARS, description="Its name.")
    description: str | None = Field(default=None, description="Accepted and ignored.")
    schema_: dict | None = Field(default=None, alias="schema", description="A JSON schema.")
    strict: bool | None = Field(default=None, description="Always followed strictly here.")


class ResponseFormat(_Request):
    """Free text, any JSON object, or JSON that a schema accepts (by grammar)."""

    type: Literal["text", "json_object", "json_schema"] = Field(description="The format.")
    json_schema: JsonSchemaFormat | None = Field(default=None,
                                                 description="For `json_schema`: the schema.")


class GenerationRequest(_Request):
    """Fields shared by chat and legacy completions."""

    model: str = Field(max_length=MAX_NAME_CHARS,
                       description="An expert of the universe, or `auto` to let the policy choose.")
    temperature: float | None = Field(default=None, ge=0, le=2, description="0 is greedy.")
    top_p: float | None = Field(default=None, gt=0, le=1, description="Nucleus sampling mass.")
    n: int | None = Field(default=None, ge=1, le=128,
                          description="Choices to return; only 1 is served.")
    stop: StopString | Annotated[list[StopString], Field(max_length=MAX_MESSAGES)] | None = Field(
        default=None, description="Up to 4 stop strings.")
    seed: int | None = Field(default=None, ge=SEED_MIN, le=SEED_MAX,
                             description="Sampler seed for reproducible output.")
    frequency_penalty: float | None = Field(
        default=None, ge=-2, le=2, description="Lower a token's logit by this times its recent count.")
    presence_penalty: float | None = Field(
        default=None, ge=-2, le=2, description="Lower the logit of any recently seen token by this.")
    top_k: int | None = Field(default=None, ge=0, le=MAX_VOCAB,
                              description="llama.cpp's: the k likeliest tokens.")
    min_p: float | None = Field(default=None, ge=0, le=1, description="llama.cpp's min-p cut.")
    repeat_penalty: float | None = Field(
        default=None, gt=0, le=2, description="llama.cpp's repeat penalty; 1 is off.")
    repeat_last_n: int | None = Field(
        default=None, ge=0, le=MAX_CONTEXT,
        description="llama.cpp's: recent tokens the penalties look back over (capped at the "
                    "expert's context).")
    stream: bool = Field(default=False, description="Stream server-sent events.")
    stream_options: StreamOptions | None = Field(default=None, description="Streaming options.")
    max_tokens: int | None = Field(default=None, ge=1,
                                   description="Most tokens to generate (capped at the context).")
    response_format: ResponseFormat | None = Field(
        default=None, description="Structured output: `json_object` or `json_schema`.")
    keep_alive: Annotated[float, Field(ge=-1, le=10**7)] | Annotated[str, Field(max_length=32)] \
        | None = Field(
        default=None,
        description="Ollama's: how long the expert stays loaded once idle, in seconds or as "
                    "\"30s\", \"5m\", \"1h\"; 0 unloads it after this request, negative "
                    "keeps it loaded.")

    @property
    def include_usage(self) -> bool:
        """True when the stream ends with a usage chunk."""
        return bool(self.stream_options and self.stream_options.include_usage)


class ChatCompletionRequest(GenerationRequest):
    """POST /v1/chat/completions."""

    messages: list[Message] = Field(min_length=1, max_length=MAX_MESSAGES,
                                    description="The conversation so far.")
    max_completion_tokens: int | None = Field(
        default=None, ge=1,
        description="Most tokens to generate (the newer name of max_tokens; capped at the "
                    "context).")
    logprobs: bool | None = Field(default=None, description="Not supported when true.")
    top_logprobs: int | None = Field(default=None, ge=0, le=20, description="Not supported.")
    tools: Annotated[list[dict], Field(max_length=MAX_MESSAGES)] | None = Field(
        default=None, description="Functions the expert may call (routed to an expert whose "
                                  "chat template renders tools).")
    tool_choice: str | dict | None = Field(
        default=None, description="auto (default), none (tools not offered), required (a "
                                  "call, forced by grammar) or a named function (forced).")
    parallel_tool_calls: bool | None = Field(
        default=None, description="False: at most one call per answer.")

    def token_limit(self, n_ctx: int) -> int:
        """max_completion_tokens, else max_tokens, else whatever the context leaves."""
        return self.max_completion_tokens or self.max_tokens or n_ctx


class CompletionRequest(GenerationRequest):
    """POST /v1/completions (OpenAI's legacy text completions)."""

    prompt: str | Annotated[list[str], Field(max_length=MAX_MESSAGES)] = Field(
        description="The text to continue (one prompt).")
    echo: bool | None = Field(default=None, description="Not supported when true.")
    suffix: str | None = Field(default=None, description="Fill in the middle between the prompt "
                               "and this (routed to an expert with FIM tokens).")
    best_of: int | None = Field(default=None, ge=1, le=20, description="Only 1 is served.")
    logprobs: int | None = Field(default=None, ge=0, le=5, description="Not supported.")

    def token_limit(self, n_ctx: int) -> int:
        """max_tokens, else OpenAI's default for completions (16)."""
        return self.max_tokens or 16


# -- responses -------------------------------------------------------------------------------

class Leeroo(BaseModel):
    """How the answer was made: the route, the timings and the energy (leeroo-local's own)."""

    expert: str = Field(description="The expert that answered.")
    quant: str = Field(description="Its quantization.")
    route: Route = Field(description="Why this expert: scores, reason, routing time.")
    timings: Timings = Field(description="Routing, load, first token, total, decode speed.")
    energy: Energy = Field(description="Energy of the generation, measured or estimated.")
    finish_reason: str = Field(description="The runtime's own finish reason.")
    notes: list[str] = Field(default_factory=list,
                             description="What the server changed from the request, e.g. a "
                                         "max_tokens capped at the context.")


class PromptTokensDetails(BaseModel):
    """OpenAI's breakdown of the prompt's tokens."""

    cached_tokens: int = Field(default=0, description="Prompt tokens whose KV state was reused "
                                                      "(the prompt cache), not computed.")


class Usage(BaseModel):
    """Token counts of a request."""

    prompt_tokens: int = Field(description="Tokens of the rendered prompt.")
    completion_tokens: int = Field(description="Tokens generated.")
    total_tokens: int = Field(description="Their sum.")
    prompt_tokens_details: PromptTokensDetails = Field(
        default_factory=PromptTokensDetails, description="Of the prompt, what was cached.")


class AssistantMessage(BaseModel):
    """The answer of a chat completion."""

    role: Literal["assistant"] = Field(default="assistant", description="Always assistant.")
    content: str | None = Field(description="The answer (null when it is calls only).")
    refusal: None = Field(default=None, description="Experts never refuse in OpenAI's sense.")
    tool_calls: list[dict] | None = Field(default=None, exclude_if=_omit_none,
                                          description="The functions called, if any.")


class ChatChoice(BaseModel):
    """The one choice of a chat completion."""

    index: int = Field(default=0, description="Always 0 (n is 1).")
    message: AssistantMessage = Field(description="The answer.")
    finish_reason: Literal["stop", "length", "tool_calls"] = Field(
        description="Why generation ended.")
    logprobs: None = Field(default=None, description="Not computed.")


class ChatCompletion(BaseModel):
    """A whole chat completion."""

    id: str = Field(description="chatcmpl-... id of the request.")
    object: Literal["chat.completion"] = Field(default="chat.completion", description="Kind.")
    created: int = Field(description="Unix time of the request.")
    model: str = Field(description="The expert that answered (also for `auto`).")
    choices: list[ChatChoice] = Field(description="One choice.")
    usage: Usage = Field(description="Token counts.")
    leeroo: Leeroo = Field(description="Route, timings and energy.")


class Delta(BaseModel):
    """What a stream chunk adds to the answer."""

    role: Literal["assistant"] | None = Field(
        default=None, exclude_if=_omit_none, description="In the first chunk only.")
    content: str | None = Field(default=None, exclude_if=_omit_none, description="New text.")
    tool_calls: list[dict] | None = Field(
        default=None, exclude_if=_omit_none,
        description="Pieces of calls: index, id, type and name first, then arguments.")


class ChunkChoice(BaseModel):
    """The one choice of a chat stream chunk."""

    index: int = Field(default=0, description="Always 0.")
    delta: Delta = Field(description="New text (empty in the last chunk).")
    finish_reason: Literal["stop", "length", "tool_calls"] | None = Field(
        default=None, description="Null until the last chunk.")
    logprobs: None = Field(default=None, description="Not computed.")


class ChatCompletionChunk(BaseModel):
    """One server-sent event of a streamed chat completion."""

    id: str = Field(description="The same id in every chunk.")
    object: Literal["chat.completion.chunk"] = Field(default="chat.completion.chunk",
                                                     description="Kind.")
    created: int = Field(description="Unix time of the request.")
    model: str = Field(description="The expert that answers.")
    choices: list[ChunkChoice] = Field(description="One choice; none in the usage chunk.")
    usage: Usage | None = Field(default=None, exclude_if=_omit_none,
                                description="Only in the last chunk, with include_usage.")
    leeroo: Leeroo | None = Field(default=None, exclude_if=_omit_none,
                                  description="In the chunk carrying finish_reason.")


class CompletionChoice(BaseModel):
    """The one choice of a text completion (whole or streamed)."""

    index: int = Field(default=0, description="Always 0.")
    text: str = Field(description="The continuation (or the new part of it, when streamed).")
    finish_reason: Literal["stop", "length"] | None = Field(
        description="Why generation ended; null until the last streamed chunk.")
    logprobs: None = Field(default=None, description="Not computed.")


class Completion(BaseModel):
    """A text completion, or one chunk of a streamed one (OpenAI uses one shape for both)."""

    id: str = Field(description="cmpl-... id of the request.")
    object: Literal["text_completion"] = Field(default="text_completion", description="Kind.")
    created: int = Field(description="Unix time of the request.")
    model: str = Field(description="The expert that answered.")
    choices: list[CompletionChoice] = Field(description="One choice; none in the usage chunk.")
    usage: Usage | None = Field(default=None, exclude_if=_omit_none, description="Token counts.")
    leeroo: Leeroo | None = Field(default=None, exclude_if=_omit_none,
                                  description="Route, timings and energy (final response/chunk).")


class ModelInfo(BaseModel):
    """leeroo-local's facts about a served model."""

    name: str = Field(description="Display name.")
    quant: str | None = Field(default=None, description="Quantization served (none for auto).")
    memory_bytes: int | None = Field(default=None, description="Predicted memory when loaded.")
    remote: bool = Field(default=False, description="Runs behind a remote OpenAI-compatible API.")
    loaded: bool = Field(default=False, description="Loaded in a worker now.")
    loading: bool = Field(default=False, description="Being loaded now.")
    busy: bool = Field(default=False, description="Answering a request now.")
    queued: int = Field(default=0, description="Requests waiting for it.")
    keep_alive_s: float | None = Field(default=None, description="Idle seconds before it unloads "
                                                                 "(none: it stays loaded).")
    pinned: bool = Field(default=False, description="Never unloaded (settings: pinned).")
    members: list[str] | None = Field(default=None, exclude_if=_omit_none,
                                      description="For auto: the experts it routes among.")


class ModelCard(BaseModel):
    """One entry of GET /v1/models."""

    id: str = Field(description="What to send as `model`.")
    object: Literal["model"] = Field(default="model", description="Kind.")
    created: int = Field(description="Unix time the server started.")
    owned_by: str = Field(default="leeroo-local", description="Who serves it.")
    leeroo: ModelInfo = Field(description="Quantization, memory, load state.")


class ModelList(BaseModel):
    """GET /v1/models."""

    object: Literal["list"] = Field(default="list", description="Kind.")
    data: list[ModelCard] = Field(description="auto, then every expert of the universe.")


class ErrorInfo(BaseModel):
    """OpenAI's error object, with token counts for a prompt over the context."""

    message: str = Field(description="What went wrong, for people.")
    type: str = Field(description="invalid_request_error, server_error, ...")
    param: str | None = Field(default=None, description="The request field at fault.")
    code: str | None = Field(default=None, description="Machine-readable reason.")
    prompt_tokens: int | None = Field(default=None, exclude_if=_omit_none,
                                      description="Tokens of the prompt (context overflow).")
    n_ctx: int | None = Field(default=None, exclude_if=_omit_none,
                              description="Tokens the expert's context holds (context overflow).")


class ErrorBody(BaseModel):
    """Every error response, and an error inside a stream that had already started."""

    error: ErrorInfo = Field(description="The error.")
