"""Runtime settings: arguments first, then $LEEROO_HOME/config/config.toml, then LEEROO_* env.

Passed explicitly to the service, the server and the TUI; never a module global.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from . import paths
from .errors import ConfigError, one_line
from .limits import MAX_CONTEXT, MAX_PARALLEL, MAX_THREADS, MAX_VOCAB
from .units import parse_size


class SamplingDefaults(BaseModel):
    """How experts sample unless a request says otherwise (`[sampling]` in config.toml).

    llama-server's top-k, top-p, min-p and penalty window; a repeat penalty of 1.1, as llama.cpp
    used to default to and Ollama does, because small base models otherwise loop on a phrase.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    temperature: float = Field(default=0.7, ge=0.0, le=2.0, description="0 is greedy.")
    top_p: float = Field(default=0.95, gt=0.0, le=1.0, description="Nucleus sampling mass.")
    top_k: int = Field(default=40, ge=0, le=MAX_VOCAB,
                       description="Sample among the k likeliest tokens; 0: all.")
    min_p: float = Field(default=0.05, ge=0.0, le=1.0,
                         description="Drop tokens less likely than min_p x the likeliest one.")
    repeat_penalty: float = Field(default=1.1, gt=0.0, le=2.0,
                                  description="Divide the logit of a recently seen token by this; 1: off.")
    repeat_last_n: int = Field(default=64, ge=0, le=MAX_CONTEXT,
                               description="Recent tokens the penalties look back over; 0: none "
                               "(at most the expert's context).")


class Settings(BaseSettings):
    """Knobs of the runtime; every one can be set in config.toml or as LEEROO_<NAME>."""

    model_config = SettingsConfigDict(env_prefix="LEEROO_", extra="forbid", allow_inf_nan=False)

    n_threads: int = Field(default=0, ge=0, le=MAX_THREADS,
                           description="llama.cpp threads for generation; 0: the physical cores "
                           "(llama.cpp's own default).")
    n_threads_batch: int = Field(default=0, ge=0, le=MAX_THREADS,
                                 description="llama.cpp threads for prompt batches; 0: as many "
                                 "as for generation.")
    prompt_cache: float = Field(
        default=1.0, ge=0, le=16,
        description="KV states an expert keeps for the conversations it left for another, in "
        "contexts' worth of its KV cache: their next turn resumes instead of computing the "
        "history again. Counted in the memory plan; 0: off.")
    n_ctx: int = Field(default=0, ge=0, le=MAX_CONTEXT,
                       description="Context per expert; 0: the universe's.")
    ram_budget: str = Field(default="", description="Memory the pool may use, e.g. 16GB; empty: 80% of free RAM.")
    vram_budget: str = Field(default="", description="GPU memory the pool may use; empty: none.")
    keep_alive_s: float = Field(default=300.0, ge=0, le=10**7,
                                description="Idle seconds before an expert unloads; 0: never "
                                "(a request's keep_alive overrides it for its expert).")
    pinned: list[str] = Field(default_factory=list, max_length=256,
                              description="Experts never unloaded, neither to make room for "
                              "another nor when idle.")
    watts_per_core: float = Field(
        default=10.0, gt=0,
        description="Power of one busy core, for energy estimates where no counter is readable.",
    )
    sysfs_root: str = Field(default="/sys", description="Root of sysfs (for RAPL energy counters).")
    policy: str = Field(
        default="",
        description="Routing policy: a policy folder or a shipped policy's name; empty: the "
        "shipped policy that knows the most experts of the universe.",
    )
    cost_weight: float = Field(
        default=0.0, ge=0,
        description="Predicted-score points one unit of cost is worth when routing (cost: GB of "
        "weights read per token); 0 routes on predicted quality alone.",
    )
    swap_penalty: float = Field(
        default=0.02, ge=0,
        description="Predicted-score points one second of expected load costs, so a close call "
        "goes to an expert that is loaded already.",
    )
    sampling: SamplingDefaults = Field(default_factory=SamplingDefaults,
                                       description="Default sampling of every request.")
    local_backend: Literal["auto", "worker", "llama-server"] = Field(
        default="auto",
        description="What runs a local expert: a worker process with llama-cpp-python, or "
        "llama.cpp's own llama-server (parallel slots: concurrent requests decode together); "
        "auto: llama-server for `serve` when a binary is found (the setting below, PATH, or "
        "`leeroo-local llama-server build`), the worker otherwise and for the other commands.",
    )
    llama_server: str = Field(
        default="", description="Path of the llama-server binary; empty: llama-server on PATH, "
        "else one `leeroo-local llama-server build` made.")
    llama_server_parallel: int = Field(
        default=8, ge=1, le=MAX_PARALLEL,
        description="Requests one llama-server expert decodes at once.")
    speculative: dict[str, str] = Field(
        default_factory=dict,
        description='Speculative decoding per expert: the id of a smaller expert with the same '
        'tokenizer that drafts for it (llama-server backend), or "ngram" (prompt lookup, either '
        'backend: drafts copied from the prompt, for edits that repeat their input). It pays '
        'only where drafts are accepted: `leeroo-local tune --speculative --save` measures and '
        'writes it.')
    llama_server_args: list[str] = Field(
        default_factory=list,
        description='More arguments for llama-server, e.g. ["--no-repack"] where its CPU '
        "repacking crashes (an AMX build seen here).")
    privacy: Literal["allow-remote", "local-only"] = Field(
        default="allow-remote",
        description="allow-remote: a prompt may go to a remote expert unless it holds private "
        "content (e-mail addresses, phone, card and IBAN numbers, keys, private keys, paths "
        "under a home), which keeps it here; local-only: every prompt stays on this machine. A "
        "request may say the same in its x-leeroo-privacy header.")
    max_mean_cost: float = Field(
        default=0.0, ge=0,
        description="Hard budget on the session's mean cost per request (GB read per token); "
        "0: none.",
    )

    @field_validator("ram_budget", "vram_budget")
    @classmethod
    def _size(cls, value: str) -> str:
        """A size now, not a ValueError on the first request."""
        if value.strip():
            parse_size(value)  # its ValueError names the value and the units
        return value

    @classmethod
    def settings_customise_sources(
        cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        file = config_file()  # read now: $LEEROO_HOME may change between settings
        try:
            toml = TomlConfigSettingsSource(settings_cls, toml_file=file)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file}: invalid TOML: {exc}") from None
        return init_settings, toml, env_settings


def load_settings(**overrides) -> Settings:
    """Settings with explicit overrides (None values ignored); ConfigError names the bad field."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        raise ConfigError(one_line(exc, f"settings ({config_file()} or LEEROO_* variables)")) \
            from None


def config_file() -> Path:
    return paths.home() / "config" / "config.toml"
