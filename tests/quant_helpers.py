"""Test helpers for quantizations: a user catalog entry for a tiny expert of any width."""

from __future__ import annotations

from pathlib import Path

from leeroo_local import paths
from leeroo_local.gguf_info import read_gguf


def write_user_expert(expert_id: str, gguf: Path, column: str | None = None,
                      extra_quant: tuple[str, str] | None = None) -> Path:
    """Append a local expert for `gguf` (an F32 tiny llama) to the user's models.toml."""
    info = read_gguf(gguf)
    n_embd, n_heads = info.arch_value("embedding_length"), info.arch_value("attention.head_count")
    quants = [f'{{ type = "F32", file = "{gguf.name}", size_bytes = {gguf.stat().st_size}, '
              'size_basis = "exact" }']
    if extra_quant:
        quants.append(f'{{ type = "{extra_quant[0]}", file = "{extra_quant[1]}", '
                      'size_bytes = 1000, size_basis = "exact" }')
    col = f'data_column = "{column}"\n' if column else ""
    text = f"""
[[experts]]
id = "{expert_id}"
name = "Tiny {expert_id}"
license = "apache-2.0"
instruct = false
default_quant = "F32"
{col}source = {{ kind = "local", folder = "{gguf.parent}" }}
arch = {{ architecture = "llama", n_layers = {info.arch_value("block_count")}, n_embd = {n_embd}, n_heads = {n_heads}, n_kv_heads = {info.arch_value("attention.head_count_kv")}, head_dim = {n_embd // n_heads}, n_vocab = 259, n_ctx_train = {info.arch_value("context_length")}, params_b = {info.n_params / 1e9}, active_params_b = {info.n_params / 1e9} }}
quants = [{", ".join(quants)}]
"""
    target = paths.config_dir() / "models.toml"
    with target.open("a", encoding="utf-8") as fh:
        fh.write(text)
    return target
