"""Test helpers for quantizations: a user catalog entry for a tiny expert of any width."""

from __future__ import annotations

from pathlib import Path

from helpers import tiny_expert_toml

from leeroo_local import paths


def write_user_expert(expert_id: str, gguf: Path, column: str | None = None,
                      extra_quant: tuple[str, str] | None = None) -> Path:
    """Append a local expert for `gguf` (an F32 tiny llama) to the user's models.toml."""
    text = tiny_expert_toml(expert_id, gguf.parent, gguf.name, column, instruct=False,
                            extra_quant=extra_quant, params_b=None)
    target = paths.config_dir() / "models.toml"
    with target.open("a", encoding="utf-8") as fh:
        fh.write(text)
    return target
