"""What a self-play run is asked to do (one schema, shared by the CLI and the library)."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, Field, model_validator

from .exploration import DEFAULT_THRESHOLD

Evaluator = Literal["loglik", "extract", "judge"]
EVALUATORS: tuple[str, ...] = get_args(Evaluator)


class SelfPlayConfig(BaseModel):
    """Settings of a self-play run; a round keeps the ones it was started with (resumption)."""

    questions: int = Field(default=20, ge=1, description="Questions drawn or generated per round.")
    generator: str | None = Field(
        default=None, description="Expert that writes the questions; none: draw them from the "
        "source file.")
    judge: str | None = Field(
        default=None, description="Expert that grades answers (judge evaluator); none: the "
        "answering expert grades itself.")
    evaluator: Evaluator = Field(
        default="loglik", description="loglik: the option with the highest length-normalised "
        "log-likelihood; extract: the letter (or short answer) the answer commits to; judge: an "
        "expert grades the answer against the reference.")
    epsilon: float = Field(default=0.1, ge=0.0, le=1.0, description="With more experts than "
                           "the threshold: probability that each expert outside the policy's "
                           "top is also run on a question.")
    threshold: int = Field(default=DEFAULT_THRESHOLD, ge=1, description="Up to this many "
                           "experts, every question goes to all of them.")
    top_k: int = Field(default=1, ge=1, description="Experts the policy ranks highest that "
                       "always answer (epsilon-greedy mode).")
    seed: int = Field(default=0, description="Seeds question draws, generation and exploration.")
    source: str | None = Field(default=None, description="Questions file in the shared format "
                               "(questions.jsonl[.gz]); none: the shipped MMLU-Pro questions.")
    validation: int = Field(default=20, ge=0, description="Size of the fixed validation set, "
                            "drawn once (on the first run) from the dataset and never trained "
                            "on; 0: none.")
    max_chars: int = Field(default=1500, ge=50, description="Longest question (text and "
                           "options, characters) drawn or accepted from the generator.")
    max_tokens: int = Field(default=128, ge=1, description="Answer length for extract and judge.")
    keep: Literal["signal", "all"] = Field(
        default="signal", description="signal: retrain on questions that separate experts (and "
        "those not compared yet); all: on every question.")

    @model_validator(mode="after")
    def _judge_needs_judge_evaluator(self) -> SelfPlayConfig:
        if self.judge and self.evaluator != "judge":
            raise ValueError("--judge needs --evaluator judge")
        return self

    def round_config(self) -> dict:
        """What a round stores of this config (its own settings, for resumption)."""
        return self.model_dump()
