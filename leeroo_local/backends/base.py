"""The contracts of running an expert.

`Backend` is what the service talks to, whatever runs the expert: a worker process with
llama-cpp-python, llama.cpp's own llama-server, or a remote OpenAI-compatible API; a `Request`
goes in, text pieces and one `Final` come out. `ManagedBackend` is what the pool loads and stops.
`Model` is the in-process contract the worker wraps.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Annotated, Iterator, Literal, Protocol

from pydantic import Field

from ..hardware import EnergyReading
from ..limits import MAX_CONTEXT, MAX_STOP, MAX_STOP_CHARS, SEED_MAX, SEED_MIN
from ..settings import SamplingDefaults
from ..toolcalls import Tools


class Sampling(SamplingDefaults):
    """One request's sampling: the configured defaults plus OpenAI's per-request fields."""

    max_tokens: int = Field(default=256, ge=1, le=MAX_CONTEXT, description="Most tokens to generate.")
    stop: list[Annotated[str, Field(max_length=MAX_STOP_CHARS)]] = Field(
        default_factory=list, max_length=MAX_STOP, description="Stop strings.")
    seed: int | None = Field(default=None, ge=SEED_MIN, le=SEED_MAX,
                             description="Sampler seed for reproducible output (low 32 bits used).")
    frequency_penalty: float = Field(
        default=0.0, ge=-2.0, le=2.0,
        description="OpenAI's: lower a token's logit by this times its count in the window.")
    presence_penalty: float = Field(
        default=0.0, ge=-2.0, le=2.0,
        description="OpenAI's: lower the logit of any token already in the window by this.")
    json_schema: dict | None = Field(
        default=None,
        description="Constrain the answer to JSON that this schema accepts (llama.cpp's "
        "JSON-schema-to-grammar); {\"type\": \"object\"} for any JSON object; None: free text.")


@dataclass
class Chunk:
    """A piece of streamed output; the last chunk has finish_reason and the token counts."""

    text: str = ""
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    """Of the prompt tokens, those whose KV state was reused rather than computed."""


@dataclass
class LoadInfo:
    """What loading cost and what the loaded model offers."""

    load_s: float
    n_ctx: int
    n_gpu_layers: int = 0
    chat_template: bool = False
    n_threads: int = 0
    n_threads_batch: int = 0
    extra: dict = field(default_factory=dict)


class Model(Protocol):
    """A loaded expert."""

    info: LoadInfo

    def count_tokens(self, text: str) -> int: ...

    def chat(self, messages: list[dict], sampling: Sampling) -> Iterator[Chunk]: ...

    def complete(self, prompt: str, sampling: Sampling) -> Iterator[Chunk]: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Request:
    """One generation, whatever runs it: a chat (`messages`) or a plain completion (`prompt`),
    with its sampling (validated once, where the request is made)."""

    sampling: Sampling
    messages: list[dict] | None = None
    prompt: str | None = None
    suffix: str | None = None
    """With `prompt` as the prefix: fill in the middle (an expert with FIM tokens)."""
    tools: Tools | None = None
    """Functions the chat offers: rendered by the expert's own template, a call forced by grammar
    when `tools.forced` (toolcalls/); the service parses the calls out of the text."""

    @property
    def op(self) -> Literal["chat", "complete"]:
        return "chat" if self.messages is not None else "complete"


@dataclass
class Final:
    """How a stream ended: why, the token counts, and the energy when the backend itself knows
    it (a remote server reports its own); None: the caller measures the backend's processes."""

    finish_reason: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    energy: EnergyReading | None = None
    cached_tokens: int = 0
    """Of the prompt tokens, those whose KV state was reused rather than computed."""
    threads: tuple[int, int] | None = None
    """llama.cpp threads (generation, prompt batches) where this machine computed it."""


class Backend(Protocol):
    """A running expert, as the service sees it."""

    @property
    def where(self) -> Literal["process", "server", "remote"]:
        """Where it runs: a worker process here, a llama-server here, or another machine."""
        ...

    @property
    def pid(self) -> int | None:
        """The local process that computes (its CPU time is the energy estimate), if any."""
        ...

    @property
    def parallel(self) -> int:
        """How many requests it serves at once (the pool admits that many)."""
        ...

    def stream(self, request: Request, cancel: threading.Event | None = None
               ) -> Iterator[str | Final]:
        """The answer's text pieces, then one Final; a set `cancel` ends the stream early with
        finish_reason "cancelled"."""
        ...

    def loglikelihoods(self, context: str, continuations: list[str]) -> list[float]:
        """Log-probability of each continuation after `context`."""
        ...

    def count_tokens(self, messages: list[dict], tools: Tools | None = None) -> int:
        """Tokens of the conversation (and the tools it offers) as this expert's chat template
        renders it."""
        ...

    def embed(self, texts: list[str]) -> tuple[list[list[float]], int]:
        """(a normalised vector per text, the tokens read), for an embedding model."""
        ...

    def health(self) -> bool:
        """True while it can take requests."""
        ...

    def close(self) -> None:
        """Stop it and give back what it holds."""
        ...


class ManagedBackend(Backend, Protocol):
    """A backend the pool starts, loads, watches and stops: a worker process or a llama-server."""

    @property
    def gpu_offload(self) -> bool:
        """Whether it can offload layers to a GPU (known once `wait_ready` returned)."""
        ...

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Block until it can load (a worker: its interpreter started and llama.cpp imported)."""
        ...

    def load(self, path: str, n_ctx: int, n_threads: int = 0, n_gpu_layers: int = 0, *,
             n_threads_batch: int = 0, prompt_cache_bytes: int = 0,
             draft: str | None = None) -> dict:
        """Load the expert's file; what the load cost and offers. Threads 0: the machine's
        default (physical cores); `prompt_cache_bytes`: KV states kept for conversations;
        `draft`: speculative decoding, a draft model's file or "ngram" (where supported)."""
        ...

    def alive(self) -> bool:
        """False once its process has exited."""
        ...

    def stop(self, timeout: float = 5.0) -> None:
        """End its process; its memory goes back to the system."""
        ...
