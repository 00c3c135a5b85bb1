"""Test helpers: a user catalog and universe that point at tiny local GGUF experts."""

from __future__ import annotations

import json
from pathlib import Path

from leeroo_local import paths


def tiny_expert_toml(expert_id: str, folder: Path, file: str, column: str | None = None) -> str:
    size = (folder / file).stat().st_size
    col = f'data_column = "{column}"\n' if column else ""
    return f"""
[[experts]]
id = "{expert_id}"
name = "Tiny {expert_id}"
license = "apache-2.0"
instruct = true
default_quant = "F32"
{col}source = {{ kind = "local", folder = "{folder}" }}
arch = {{ architecture = "llama", n_layers = 2, n_embd = 64, n_heads = 4, n_kv_heads = 2, head_dim = 16, n_vocab = 259, n_ctx_train = 512, params_b = 0.0002, active_params_b = 0.0002 }}
quants = [{{ type = "F32", file = "{file}", size_bytes = {size}, size_basis = "exact" }}]
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
