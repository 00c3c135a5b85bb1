"""`leeroo-local inspect FILE.gguf`: the memory breakdown and architecture facts of a GGUF file."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import echo_json


def register(app: typer.Typer) -> None:
    app.command("inspect")(inspect)


def inspect(
    file: Path = typer.Argument(..., help="A local GGUF file."),
    ctx: int = typer.Option(4096, "--ctx", min=1, help="Context length to budget for."),
    vram: str = typer.Option(None, "--vram", help="VRAM budget (e.g. 8GB) for a GPU/CPU split."),
    kv_type: str = typer.Option("f16", "--kv-type", help="KV cache type: f16, q8_0, q4_0, ..."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Predict the memory FILE needs at --ctx, from its header alone (no tensor data is read)."""
    from ..gguf_info import read_gguf
    from ..memory import estimate, shape_from_gguf
    from ..units import format_size, parse_size

    info = read_gguf(file)
    shape = shape_from_gguf(info)
    est = estimate(shape, ctx, type_k=kv_type, type_v=kv_type,
                   vram_bytes=parse_size(vram) if vram else None)
    arch = {
        "architecture": shape.architecture, "file_type": info.file_type,
        "n_params": info.n_params, "n_layers": shape.n_layers, "n_embd": shape.n_embd,
        "n_heads": shape.n_heads, "n_kv_heads": shape.n_kv_heads, "head_dim_k": shape.head_dim_k,
        "head_dim_v": shape.head_dim_v, "n_vocab": shape.n_vocab, "n_ctx_train": shape.n_ctx_train,
        "sliding_window": shape.sliding_window, "swa_layers": shape.swa_layers,
    }
    if as_json:
        echo_json({"file": str(file), **est.model_dump(), "arch": arch})
        return
    typer.echo(f"{file}  ({arch['architecture']}, {info.file_type}, {info.n_params / 1e6:.0f}M params)")
    for key in ("weights_bytes", "kv_bytes", "compute_bytes", "overhead_bytes", "total_bytes"):
        typer.echo(f"  {key.removesuffix('_bytes'):<9} {format_size(getattr(est, key)):>12}")
    if vram:
        typer.echo(f"  gpu: {est.n_gpu_layers} layers, {format_size(est.gpu_bytes)}; "
                   f"cpu: {format_size(est.cpu_bytes)}")
    if ctx > shape.n_ctx_train:
        typer.echo(f"  note: --ctx {ctx} exceeds the trained context {shape.n_ctx_train}")
