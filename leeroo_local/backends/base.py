"""The contract every backend meets: load once, then stream text for chat messages or a prompt."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Protocol

from pydantic import Field

from ..settings import SamplingDefaults


class Sampling(SamplingDefaults):
    """One request's sampling: the configured defaults plus OpenAI's per-request fields."""

    max_tokens: int = Field(default=256, ge=1, description="Most tokens to generate.")
    stop: list[str] = Field(default_factory=list, description="Stop strings.")
    seed: int | None = Field(default=None, description="Sampler seed for reproducible output.")
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
