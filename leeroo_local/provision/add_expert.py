"""Bring your own expert: a hub repository, a local GGUF or an Ollama model, as a catalog entry.

`add` reads what a catalog entry needs without downloading weights: the hub's listing (exact
sizes of every quantization, split files summed) and one GGUF header by range requests, or the
header of a file already on this machine (a local path, a blob of the Ollama store, or a hub
file in the Hugging Face cache when the hub cannot be reached). Local and Ollama files are used
in place. The entry is appended to the user's models.toml (catalog_edit) with the provenance
of every fact; adding the same source under the same id again reuses the entry (so an
interrupted `add --onboard` is simply run again).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from . import catalog_edit, hub_probe, ollama_store
from ..catalog import Arch, Expert, load_user_catalog
from ..errors import ConfigError, DownloadError, NotAvailableOffline
from .expert_facts import arch_facts, group_quants, header_facts, make_id, pick_default
from ..gguf_info import GGUFInfo, read_gguf
from ..locate import shard_names
from ..memory import estimate, shape_from_catalog


class QuantSummary(BaseModel):
    type: str = Field(description="Quantization type.")
    file: str = Field(description="First (or only) file.")
    size_bytes: int = Field(description="Exact bytes of all its files.")
    memory_bytes: int = Field(description="Predicted memory at n_ctx (what fit would budget).")


class AddResult(BaseModel):
    """What `add` registered (or found registered already)."""

    id: str = Field(description="Catalog id of the expert.")
    origin: str = Field(description="The source as given, e.g. hf:owner/repo.")
    kind: str = Field(description="hf, local or ollama.")
    reused: bool = Field(description="The same source was registered under this id already.")
    default_quant: str = Field(description="The quantization pulled and onboarded.")
    quants: list[QuantSummary] = Field(description="Every quantization offered, smallest first.")
    arch: Arch = Field(description="Architecture facts, from the GGUF header.")
    n_ctx: int = Field(description="Context the memory figures are for.")
    header_bytes: int | None = Field(default=None, description="Bytes fetched to read the "
                                     "header (hub sources), of header_file_bytes.")
    header_file_bytes: int | None = Field(default=None, description="Size of that file.")
    skipped: list[str] = Field(default_factory=list, description="Files left out, and why.")
    provenance: dict[str, str] = Field(description="Where each fact came from.")
    catalog_file: str = Field(description="The models.toml the entry is in.")


def add(source: str, expert_id: str | None = None, quant: str | None = None,
        n_ctx: int = 4096) -> AddResult:
    """Register SOURCE (hf:OWNER/REPO[/FILE.gguf], ollama:NAME[:TAG], or a GGUF path)."""
    if source.startswith("hf:"):
        entry, extra = _from_hub(source[3:].strip("/"), quant)
    elif source.startswith("ollama:"):
        entry, extra = _from_ollama(source[len("ollama:"):], quant)
    else:
        entry, extra = _from_file(source, quant)
    entry = {"id": expert_id or entry["id"], **{k: v for k, v in entry.items() if k != "id"}}
    catalog = load_user_catalog()
    reused = False
    if entry["id"] in catalog.ids():
        old = catalog.get(entry["id"])
        same = (old.source == type(old.source).model_validate(entry["source"])
                and {q.file for q in old.quants} == {q["file"] for q in entry["quants"]})
        if not same:
            where = ("your models.toml" if entry["id"] in catalog_edit.user_expert_ids()
                     else "the shipped catalog")
            raise ConfigError(f"an expert {entry['id']!r} exists already ({where}, from "
                              f"{old.source.kind}); choose another id with --id")
        reused, expert = True, old
    else:
        expert = Expert.model_validate(entry)
        catalog_edit.add_expert(expert.model_dump(exclude_defaults=True, exclude_none=True),
                                source)
    quants = [QuantSummary(type=q.type, file=q.file, size_bytes=q.size_bytes,
                           memory_bytes=estimate(shape_from_catalog(expert, q), n_ctx).total_bytes)
              for q in expert.quants]
    return AddResult(id=expert.id, origin=source, kind=extra["kind"], reused=reused,
                     default_quant=expert.default_quant, quants=quants, arch=expert.arch,
                     n_ctx=n_ctx, header_bytes=extra.get("bytes"),
                     header_file_bytes=extra.get("file_bytes"), skipped=extra.get("skipped", []),
                     provenance=expert.provenance,
                     catalog_file=str(catalog_edit.user_catalog_files()[0]))


def _entry(expert_id: str, name: str, source: dict, quants: list[dict], default: str,
           info: GGUFInfo, where: str, provenance: dict[str, str]) -> dict:
    facts = header_facts(info, where)
    arch = arch_facts(info)
    return {
        "id": expert_id, "name": facts["name"] or name, "source": source, "quants": quants,
        "default_quant": default, "arch": arch.model_dump(), "license": facts["license"],
        "instruct": facts["instruct"], "provenance": {**facts["provenance"], **provenance},
        "notes": f"added with `leeroo-local add` from {where}",
    }


def _from_hub(spec: str, quant: str | None) -> tuple[dict, dict]:
    parts = spec.split("/")
    if len(parts) < 2 or not all(parts[:2]):
        raise ConfigError(f"hf:{spec}: write hf:OWNER/REPO or hf:OWNER/REPO/FILE.gguf")
    repo, file = "/".join(parts[:2]), "/".join(parts[2:]) or None
    try:
        files, local = hub_probe.list_files(repo), None
        listed = f"hub tree listing of {repo}@main (exact byte counts and sha256 of the LFS files)"
    except NotAvailableOffline as exc:
        files, local = hub_probe.cached_files(repo)
        if not files:
            raise NotAvailableOffline(f"{exc}; and there is no copy of {repo} in the Hugging "
                                      "Face cache: connect to the network (or set HF_ENDPOINT) "
                                      "and run add again") from None
        listed = f"files of {repo} in the Hugging Face cache (the hub could not be reached)"
    groups, skipped = group_quants(files)
    if file:
        groups = [g for g in groups if file in g.files]
        if not groups:
            raise DownloadError(f"{repo} has no GGUF file {file} (or it is not a language "
                                f"model's); see {hub_probe.endpoint()}/{repo}/tree/main")
    if not groups:
        ggufs = [f.path for f in files if f.path.endswith(".gguf")]
        raise DownloadError(
            f"{repo} has no GGUF file that llama.cpp could run ({len(files)} files"
            + (f"; left out: {'; '.join(skipped)}" if ggufs else ", none of them .gguf")
            + "); GGUF conversions usually live in a repository named ...-GGUF")
    default = pick_default([g.type for g in groups], quant)
    chosen = next(g for g in groups if g.type == default)
    sizes = {f.path: f.size for f in files}
    extra: dict = {"kind": "hf", "skipped": skipped, "file_bytes": sizes[chosen.file]}
    if local is not None:
        info, where = read_gguf(local[chosen.file]), f"{local[chosen.file]} (cached hub file)"
    else:
        info, cost = hub_probe.read_header(repo, chosen.file, sizes[chosen.file])
        extra["bytes"] = cost["bytes"]
        at = f"@{cost['commit'][:12]}" if cost.get("commit") else ""
        where = (f"hf:{repo}/{chosen.file}{at} ({cost['bytes']:,} of {sizes[chosen.file]:,} bytes, "
                 f"{cost['requests']} range request(s))")
    quants = [{"type": g.type, "file": g.file, "size_bytes": g.size, "size_basis": "exact",
               **({"sha256": g.sha256} if g.sha256 else {})} for g in groups]
    provenance = {"quants": f"{listed}; types from the file names", "default_quant":
                  f"--quant {quant}" if quant else "the first of Q4_K_M, Q4_K_S, Q5_K_M, ... offered"}
    entry = _entry(make_id(repo), repo.split("/")[1], {"kind": "hf", "repo": repo}, quants,
                   default, info, where, provenance)
    _scale_split_params(entry, info, chosen.size)
    return entry, extra


def _scale_split_params(entry: dict, info: GGUFInfo, total: int) -> None:
    """A split file's first shard lists only its own tensors: scale its count by size."""
    if int(info.metadata.get("split.count", 1) or 1) <= 1 or info.file_size >= total:
        return
    factor = total / info.file_size
    arch = entry["arch"]
    arch["params_b"] = round(arch["params_b"] * factor, 4)
    arch["active_params_b"] = round(arch["active_params_b"] * factor, 4)
    entry["provenance"]["params_b"] = ("estimated: the first shard's tensor count scaled by "
                                       f"the size of all {info.metadata.get('split.count')} shards")


def _local_type(info: GGUFInfo, name: str, quant: str | None) -> str:
    from .expert_facts import quant_from_name

    header = info.file_type.removeprefix("ALL_")
    found = header if header != "?" and not header.startswith("type") else quant_from_name(name)
    if quant and found and quant.upper() != found.upper():
        raise ConfigError(f"{name} is {found} (its header says so), not {quant}")
    return quant.upper() if quant and not found else (found or "GGUF")


def _from_file(spec: str, quant: str | None) -> tuple[dict, dict]:
    path = Path(spec).expanduser()
    if not path.is_file():
        hint = (f"; for a hub repository write hf:{spec}" if spec.count("/") == 1
                and not path.exists() else "")
        raise ConfigError(f"{spec}: no such GGUF file{hint}")
    path = path.resolve()
    names = shard_names(path.name)
    missing = [n for n in names if not (path.parent / n).is_file()]
    if missing:
        raise ConfigError(f"{path}: shard {missing[0]} is not beside it")
    info = read_gguf(path)
    qtype = _local_type(info, path.name, quant)
    size = sum((path.parent / n).stat().st_size for n in names)
    quants = [{"type": qtype, "file": path.name, "size_bytes": size, "size_basis": "exact"}]
    provenance = {"quants": f"size of the file(s) on disk; type from {_type_basis(info)}"}
    entry = _entry(make_id(path.name), path.stem, {"kind": "local", "folder": str(path.parent)},
                   quants, qtype, info, str(path), provenance)
    _scale_split_params(entry, info, size)
    return entry, {"kind": "local"}


def _from_ollama(name: str, quant: str | None) -> tuple[dict, dict]:
    if not name or ".." in name:
        raise ConfigError(f"ollama:{name}: write ollama:MODEL or ollama:MODEL:TAG")
    model = ollama_store.find(name)
    info = read_gguf(model.blob)
    qtype = _local_type(info, model.blob.name, quant)
    quants = [{"type": qtype, "file": model.blob.name, "size_bytes": model.size,
               "size_basis": "exact", "sha256": model.digest}]
    provenance = {"quants": f"Ollama manifest {model.manifest} (blob size, sha256 digest); "
                            f"type from {_type_basis(info)}"}
    base, _, tag = name.partition(":")
    expert_id = make_id(base) + (f"-{make_id(tag)}" if tag and tag != "latest" else "")
    entry = _entry(expert_id, name, {"kind": "local", "folder": str(model.blob.parent)}, quants,
                   qtype, info, f"ollama:{name} ({model.blob})", provenance)
    return entry, {"kind": "ollama"}


def _type_basis(info: GGUFInfo) -> str:
    return ("the GGUF header general.file_type" if info.file_type != "?" else "the file name")
