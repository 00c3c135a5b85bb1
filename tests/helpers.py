"""Test helpers: a user catalog and universe that point at tiny local GGUF experts."""

from __future__ import annotations

import json
import time
from pathlib import Path

from leeroo_local import paths
from leeroo_local.gguf_info import read_gguf


def tiny_expert_toml(expert_id: str, folder: Path, file: str, column: str | None = None, *,
                     instruct: bool = True, extra_quant: tuple[str, str] | None = None,
                     params_b: float | None = 0.0002) -> str:
    """A user catalog entry for a tiny local GGUF, its architecture read from the header
    (params_b None: counted there too; the fixed default keeps snapshot costs stable)."""
    gguf = folder / file
    info = read_gguf(gguf)
    n_embd, n_heads = info.arch_value("embedding_length"), info.arch_value("attention.head_count")
    quants = [f'{{ type = "F32", file = "{file}", size_bytes = {gguf.stat().st_size}, '
              'size_basis = "exact" }']
    if extra_quant:
        quants.append(f'{{ type = "{extra_quant[0]}", file = "{extra_quant[1]}", '
                      'size_bytes = 1000, size_basis = "exact" }')
    col = f'data_column = "{column}"\n' if column else ""
    params = info.n_params / 1e9 if params_b is None else params_b
    return f"""
[[experts]]
id = "{expert_id}"
name = "Tiny {expert_id}"
license = "apache-2.0"
instruct = {str(instruct).lower()}
default_quant = "F32"
{col}source = {{ kind = "local", folder = "{folder}" }}
arch = {{ architecture = "llama", n_layers = {info.arch_value("block_count")}, n_embd = {n_embd}, n_heads = {n_heads}, n_kv_heads = {info.arch_value("attention.head_count_kv")}, head_dim = {n_embd // n_heads}, n_vocab = 259, n_ctx_train = {info.arch_value("context_length")}, params_b = {params}, active_params_b = {params} }}
quants = [{", ".join(quants)}]
"""


def install_tiny_universe(tiny_dir: Path, n: int = 3, n_ctx: int = 256) -> list[str]:
    """Write a user catalog with tiny-1..n and save them as the universe; return their ids."""
    ids = [f"tiny-{i}" for i in range(1, n + 1)]
    text = "".join(tiny_expert_toml(i, tiny_dir, f"{i}.gguf") for i in ids)
    (paths.config_dir() / "models.toml").write_text(text)
    universe = {"members": [{"expert": i, "quant": "F32"} for i in ids], "n_ctx": n_ctx,
                "origin": "user"}
    paths.universe_path().write_text(json.dumps(universe))
    return ids


def rows(service, conversation):
    """The request log's rows of one conversation, newest first."""
    return service.log.recent(100, conversation=conversation)


def wait_for_row(service, conversation, timeout=60.0):
    """The conversation's newest log row, once the service has written it (a request's row is
    written when its generator ends, which may be after the client has its answer)."""
    deadline = time.monotonic() + timeout
    while not rows(service, conversation):
        assert time.monotonic() < deadline, f"no log row for {conversation}"
        time.sleep(0.02)
    return rows(service, conversation)[0]


def anthropic_events(resp):
    """(event, data) of an Anthropic Messages stream read raw, each data object checked against
    the `anthropic` SDK's type for its event (ping has none) and naming its own event."""
    from anthropic.types import (RawContentBlockDeltaEvent, RawContentBlockStartEvent,
                                 RawContentBlockStopEvent, RawMessageDeltaEvent,
                                 RawMessageStartEvent, RawMessageStopEvent)

    types = {"message_start": RawMessageStartEvent,
             "content_block_start": RawContentBlockStartEvent,
             "content_block_delta": RawContentBlockDeltaEvent,
             "content_block_stop": RawContentBlockStopEvent,
             "message_delta": RawMessageDeltaEvent, "message_stop": RawMessageStopEvent}
    event = None
    for line in resp.iter_lines():
        if line.startswith("event: "):
            event = line[len("event: "):]
        elif line.startswith("data: "):
            data = json.loads(line[len("data: "):])
            assert data["type"] == event
            if event in types:
                types[event].model_validate(data)
            yield event, data
