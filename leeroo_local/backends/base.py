"""The contracts of running an expert.

`Backend` is what the service talks to, whatever runs the expert: a worker process with
llama-cpp-python, llama.cpp's own llama-server, or a remote OpenAI-compatible API. `Model` is the
in-process contract the worker wraps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Iterator, Literal, Protocol, Union

from pydantic import Field

from ..limits import MAX_CONTEXT, MAX_STOP, MAX_STOP_CHARS, SEED_MAX, SEED_MIN
from ..settings import SamplingDefaults


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


@dataclass
class Chunk:
    """A piece of streamed output; the last chunk has finish_reason and the token counts."""

    text: str = ""
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class LoadInfo:
    """What loading cost and what the loaded model offers."""

    load_s: float
    n_ctx: int
    n_gpu_layers: int = 0
    chat_template: bool = False
    extra: dict = field(default_factory=dict)


class Model(Protocol):
    """A loaded expert."""

    info: LoadInfo

    def count_tokens(self, text: str) -> int: ...

    def chat(self, messages: list[dict], sampling: Sampling) -> Iterator[Chunk]: ...

    def complete(self, prompt: str, sampling: Sampling) -> Iterator[Chunk]: ...

    def close(self) -> None: ...


Message = tuple[str, Union[str, dict]]
"""A streamed message: ("chunk", text) any number of times, then ("done", final) once, where
final holds finish_reason, prompt_tokens, completion_tokens and, from a server that reports its
own measurements, "remote" (leeroo-local's extension: route, energy)."""


class Backend(Protocol):
    """A running expert, as the service sees it."""

    where: Literal["process", "server", "remote"]
    """Where it runs: a worker process here, a llama-server here, or another machine."""
    pid: int | None
    """The local process that computes (its CPU time is the energy estimate); None: remote."""
    parallel: int
    """How many requests it serves at once (the pool admits that many)."""

    def stream(self, op: str, payload, sampling: dict,
               cancel=None) -> Iterator[Message]:
        """Run "chat" (payload: messages) or "complete" (payload: prompt); a set `cancel`
        ends the stream early with finish_reason "cancelled"."""
        ...

    def loglikelihoods(self, context: str, continuations: list[str]) -> list[float]:
        """Log-probability of each continuation after `context`."""
        ...

    def count_tokens(self, messages: list[dict]) -> int:
        """Tokens of the conversation as this expert's chat template renders it."""
        ...

    def health(self) -> bool:
        """True while it can take requests."""
        ...

    def close(self) -> None:
        """Stop it and give back what it holds."""
        ...
