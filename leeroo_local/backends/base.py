"""The contract every backend meets: load once, then stream text for chat messages or a prompt."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Protocol

from pydantic import BaseModel, Field


class Sampling(BaseModel):
    """Sampling options passed through to the backend (OpenAI names)."""

    max_tokens: int = Field(default=256, ge=1, description="Most tokens to generate.")
    temperature: float = Field(default=0.7, ge=0.0, le=2.0, description="0 is greedy.")
    top_p: float = Field(default=0.95, gt=0.0, le=1.0, description="Nucleus sampling mass.")
    stop: list[str] = Field(default_factory=list, description="Stop strings.")
    seed: int | None = Field(default=None, description="Sampler seed for reproducible output.")


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
