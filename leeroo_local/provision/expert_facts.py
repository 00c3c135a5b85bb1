"""Catalog facts of a new expert, from a GGUF header and file names alone.

What `add` writes must be true, and say where it came from: the architecture facts are read
from the header (the same ones `inspect` shows), the quantization of a hub file from its name
(llama.cpp's naming, e.g. `-Q4_K_M.gguf`, which the hub's GGUF repositories follow) and its size
from the hub's listing. An architecture the installed llama.cpp toolchain does not know is
refused here rather than at the first load.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pydantic import ValidationError

from ..catalog import Arch
from ..errors import CorruptModel, UnsupportedModel, first_error
from ..gguf_info import GGUFInfo
from ..locate import shard_names
from ..memory import shape_from_gguf

_QUANT = re.compile(r"(?<![A-Za-z0-9])(I?Q\d_[A-Z0-9]+(?:_[A-Z0-9]+)*|BF16|F16|F32|MXFP4(?:_MOE)?"
                    r"|TQ\d_\d)(?![A-Za-z0-9])", re.IGNORECASE)
_SHARD = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$")
# The quantization an expert is pulled at when the user names none: the usual quality/size
# sweet spot first, then larger, then whatever is smallest.
PREFERRED = ("Q4_K_M", "Q4_K_S", "Q5_K_M", "Q4_0", "IQ4_XS", "Q5_K_S", "Q6_K", "Q8_0")


def supported_architectures() -> set[str]:
    """Architectures llama.cpp knows, as the gguf package (llama.cpp's gguf-py) lists them."""
    from gguf import MODEL_ARCH_NAMES

    return set(MODEL_ARCH_NAMES.values())


def check_loadable(info: GGUFInfo) -> None:
    """UnsupportedModel for an architecture llama.cpp cannot load."""
    arch = info.metadata.get("general.architecture")
    if not arch:
        raise CorruptModel(f"{info.path}: the header has no general.architecture")
    if arch not in supported_architectures():
        raise UnsupportedModel(f"{info.path}: architecture {arch!r} is not one llama.cpp can "
                               "load (not in gguf-py's list of model architectures)")


def arch_facts(info: GGUFInfo) -> Arch:
    """The catalog's architecture facts from a header; CorruptModel if it lacks any of them."""
    check_loadable(info)
    shape = shape_from_gguf(info)
    params = info.n_params
    active = params
    n_experts = int(info.arch_value("expert_count", 0) or 0)
    used = int(info.arch_value("expert_used_count", 0) or 0)
    if n_experts and used:  # MoE: only `used` of the expert tensors run per token
        routed = sum(_numel(t.shape) for t in info.tensors if "_exps" in t.name)
        active = params - routed + routed * used // n_experts
    try:
        return Arch(
            architecture=shape.architecture, n_layers=shape.n_layers, n_embd=shape.n_embd,
            n_heads=shape.n_heads, n_kv_heads=shape.n_kv_heads,
            head_dim=(shape.head_dim_k + shape.head_dim_v) // 2, n_vocab=shape.n_vocab,
            n_ctx_train=shape.n_ctx_train, sliding_window=shape.sliding_window,
            swa_layers=shape.swa_layers, params_b=round(params / 1e9, 6) or 1e-6,
            active_params_b=round(active / 1e9, 6) or 1e-6)
    except ValidationError as exc:
        loc, msg = first_error(exc)
        raise CorruptModel(f"{info.path}: the header gives no usable {loc[0]} ({msg})") from None


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def header_facts(info: GGUFInfo, where: str) -> dict:
    """name, license and instruct from the header, each with its provenance."""
    meta = info.metadata
    out: dict = {"provenance": {"arch": f"GGUF header of {where}",
                                "params_b": "counted from the header's tensor table"}}
    out["name"] = str(meta.get("general.name") or "")
    if out["name"]:
        out["provenance"]["name"] = "GGUF header general.name"
    license_ = meta.get("general.license")
    out["license"] = str(license_) if license_ else "unknown"
    out["provenance"]["license"] = ("GGUF header general.license" if license_ else
                                    "not in the GGUF header: check the model card")
    out["instruct"] = bool(meta.get("tokenizer.chat_template"))
    out["provenance"]["instruct"] = ("GGUF header: has tokenizer.chat_template" if out["instruct"]
                                     else "GGUF header: no chat template (a base model)")
    return out


def quant_from_name(file: str) -> str | None:
    """Q4_K_M from `Model-Q4_K_M.gguf` or `q4_k_m/model-q4_k_m-00001-of-00002.gguf`."""
    stem = _SHARD.sub("", file.rsplit("/", 1)[-1]).removesuffix(".gguf")
    found = _QUANT.findall(stem)
    return found[-1].upper() if found else None


@dataclass
class QuantFiles:
    """One quantization offered by a repository: its first file and the total size."""

    type: str
    file: str
    size: int
    sha256: str | None
    files: list[str] = field(default_factory=list)


def group_quants(files: list) -> tuple[list[QuantFiles], list[str]]:
    """Group a repository's GGUF files (RepoFile-like: path, size, sha256) by quantization;
    split files are one quantization only when every shard is listed. Returns the groups and
    the files left out, with why."""
    by_path = {f.path: f for f in files if f.path.endswith(".gguf")}
    groups: dict[str, QuantFiles] = {}
    skipped = []
    for path in sorted(by_path):
        name = path.rsplit("/", 1)[-1]
        if "mmproj" in name.lower():
            skipped.append(f"{path} (a vision projector, not a language model)")
            continue
        m = _SHARD.search(path)
        if m and m.group(1) != "00001":
            continue  # counted with its first shard
        parts = shard_names(path)
        missing = [p for p in parts if p not in by_path]
        if missing:
            skipped.append(f"{path} (shard {missing[0]} is not in the repository)")
            continue
        qtype = quant_from_name(path)
        if qtype is None:
            skipped.append(f"{path} (no quantization type in its name)")
            continue
        if qtype in groups:
            skipped.append(f"{path} (another {qtype} file, {groups[qtype].file}, was taken)")
            continue
        groups[qtype] = QuantFiles(
            qtype, path, sum(by_path[p].size for p in parts),
            by_path[path].sha256 if len(parts) == 1 else None, parts)
    return sorted(groups.values(), key=lambda g: g.size), skipped


def pick_default(types: list[str], wanted: str | None = None) -> str:
    """The quantization to pull: `wanted` if offered, else the first of PREFERRED, else the
    smallest (types are sorted by size)."""
    upper = [t.upper() for t in types]
    if wanted:
        if wanted.upper() not in upper:
            from ..errors import UnknownQuant

            raise UnknownQuant(f"no {wanted} quantization here (offered: {', '.join(types)})")
        return types[upper.index(wanted.upper())]
    for p in PREFERRED:
        if p in upper:
            return types[upper.index(p)]
    return types[0]


def make_id(text: str) -> str:
    """A catalog id from a repository, file or model name: lowercase, [a-z0-9._-], no -gguf
    suffix and no quantization suffix."""
    text = text.rsplit("/", 1)[-1]
    text = _SHARD.sub("", text).removesuffix(".gguf")
    q = quant_from_name(text + ".gguf")
    if q:
        text = re.sub(rf"[-_.]?{re.escape(q)}$", "", text, flags=re.IGNORECASE)
    text = re.sub(r"[-_.]gguf$", "", text, flags=re.IGNORECASE).lower()
    text = re.sub(r"[^a-z0-9._-]+", "-", text).strip("-._")
    return text or "expert"
