"""What an expert can serve beyond a plain completion: a chat (instruction-tuned, with a chat
template), tool calls (its template renders `tools`), fill-in-the-middle (its vocabulary has FIM
tokens), embeddings (an embedding model: it pools).

A chat is the catalog's `instruct` (a base model's GGUF may carry a template it was never tuned
to follow); the rest is read from the GGUF header when the file is on this machine (the chat
template's tools, the FIM token ids, the pooling type). A request that needs a capability
goes only to members that have it (runtime/eligibility.py); MMLU-Pro's 5-shot scores cannot
tell a base model from an instruct one, so without this a chat request could go to a base model
that follows no instructions.
"""

from __future__ import annotations

from pathlib import Path

from .catalog import Expert
from .gguf_info import read_gguf

CHAT, TOOLS, FIM, EMBEDDINGS = "chat", "tools", "fim", "embeddings"
ALL = (CHAT, TOOLS, FIM, EMBEDDINGS)

_FIM_KEYS = ("tokenizer.ggml.fim_pre_token_id", "tokenizer.ggml.prefix_token_id")


def from_header(path: Path) -> set[str]:
    """Capabilities the GGUF header shows (cached per version of the file by gguf_info)."""
    meta = read_gguf(path).metadata
    found = set()
    template = meta.get("tokenizer.chat_template")
    if isinstance(template, str) and "tools" in template:
        found.add(TOOLS)
    if any(meta.get(k) is not None for k in _FIM_KEYS):
        found.add(FIM)
    arch = meta.get("general.architecture", "")
    pooling = meta.get(f"{arch}.pooling_type")
    if pooling not in (None, 0) or meta.get("general.type") == "embedding":
        found.add(EMBEDDINGS)
    return found


def in_catalog(catalog, capability: str) -> list[str]:
    """Catalog experts that state `capability`, smallest download first: what to pull when no
    member has it (the first is the one suggested)."""
    stating = [e for e in catalog.experts if capability in e.capabilities]
    return [e.id for e in sorted(stating, key=lambda e: e.quant().size_bytes)]


def of_expert(expert: Expert, path: Path | None) -> set[str]:
    """The expert's capabilities: its file's header when present (else what the catalog
    states), and the catalog's facts."""
    found = {CHAT} if expert.instruct else set()
    if path is None:
        found |= set(expert.capabilities)
    else:
        try:
            found |= from_header(path)
        except Exception:  # noqa: BLE001 - a damaged file says nothing; the catalog still does
            pass
    if CHAT not in found:
        found.discard(TOOLS)  # tools are called in a chat
    return found
