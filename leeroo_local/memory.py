"""Bytes an expert needs at a context length: weights, KV cache, compute buffers, overhead.

Pure arithmetic over a ModelShape, which comes from a GGUF header (exact) or from catalog facts
(before the file is downloaded). The constants are calibrated against llama.cpp (through
llama-cpp-python 0.3.x) on this project's CPU machine; `bench/memory_calibration.py` re-measures
them. What we predict is the resident memory that loading adds to a process (RSS growth):
weights are memory-mapped but touched at load, the KV cache is zeroed at load, the CPU compute
buffer is reserved but only its decode working set becomes resident.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, Field

MiB = 1024**2

# Bytes per element of the KV cache types llama.cpp offers (q8_0/q4_0 include block scales).
KV_TYPE_BYTES = {"f32": 4.0, "f16": 2.0, "bf16": 2.0, "q8_0": 34 / 32, "q5_1": 24 / 32,
                 "q5_0": 22 / 32, "q4_1": 20 / 32, "q4_0": 18 / 32, "iq4_nl": 18 / 32}
# Every layer but each N-th uses the sliding window, where the header does not say (llama.cpp's
# own defaults per architecture).
SWA_PATTERN = {"gemma2": 2, "gemma3": 6, "gemma3n": 5, "cohere2": 4}
# Quant types llama.cpp's CPU backend repacks into an interleaved copy at load (x86 AVX2/Arm).
REPACKED_TYPES = {"Q4_0", "Q4_K", "IQ4_NL"}
# Calibrated: fixed runtime allocations, plus llama.cpp's per-token vocabulary structures.
BASE_OVERHEAD = 4 * MiB
PER_VOCAB_TOKEN = 128
# What a process that offloads pays once for the GPU runtime (CUDA context, cuBLAS workspace) on
# the GPU, and in host memory. Measured on an H200 (driver 580.159, CUDA 13.0, llama-cpp-python
# 0.3.36) by bench/gpu_check.sh: the driver showed 442-489 MiB more than layers and compute
# buffers, the process 102 MiB more RSS than its CPU share. Each expert runs in its own worker
# process, so each offloading expert pays them.
GPU_RUNTIME_BYTES = 480 * MiB
GPU_RUNTIME_HOST_BYTES = 100 * MiB


@dataclass(frozen=True)
class ModelShape:
    """The facts of a model that decide its memory."""

    architecture: str
    n_layers: int
    n_embd: int
    n_heads: int
    n_kv_heads: int
    head_dim_k: int
    head_dim_v: int
    n_vocab: int
    n_ctx_train: int
    weights_bytes: int
    sliding_window: int = 0
    swa_layers: int = 0
    repack_bytes: int = 0
    source: str = "gguf"


class MemoryEstimate(BaseModel):
    """Predicted memory of one loaded expert; totals in bytes."""

    n_ctx: int = Field(description="Context length the estimate is for.")
    weights_bytes: int = Field(description="Model tensors (memory-mapped, touched at load).")
    kv_bytes: int = Field(description="KV cache for n_ctx tokens, all layers.")
    compute_bytes: int = Field(description="Resident compute working set and output buffer.")
    overhead_bytes: int = Field(description="Runtime, vocabulary structures, repacked copies.")
    total_bytes: int = Field(description="Sum of the above: the process growth at load.")
    n_gpu_layers: int = Field(default=0, description="Layers offloaded when a VRAM budget is given.")
    gpu_bytes: int = Field(default=0, description="Bytes placed on the GPU.")
    cpu_bytes: int = Field(default=0, description="Bytes left in system RAM.")
    source: str = Field(default="gguf", description="gguf (header facts) or catalog (estimate).")


def swa_layer_count(architecture: str, n_layers: int, sliding_window: int, pattern=None) -> int:
    """How many layers use the sliding window: from the header's pattern, else llama.cpp's default."""
    if not sliding_window:
        return 0
    if isinstance(pattern, list):
        return sum(1 for p in pattern[:n_layers] if p)
    period = int(pattern) if pattern else SWA_PATTERN.get(architecture, 0)
    if period <= 0:
        return n_layers
    return n_layers - n_layers // period


def kv_cells(shape: ModelShape, n_ctx: int, n_ubatch: int, swa_full: bool) -> tuple[int, int]:
    """(cells of a full-attention layer, cells of a sliding-window layer)."""
    if swa_full or not shape.sliding_window:
        return n_ctx, n_ctx
    swa = -(-(shape.sliding_window + n_ubatch) // 256) * 256
    return n_ctx, min(n_ctx, swa)


def kv_bytes(
    shape: ModelShape, n_ctx: int, type_k: str = "f16", type_v: str = "f16",
    n_ubatch: int = 512, swa_full: bool = True,
) -> int:
    """KV cache bytes: per layer, cells x KV heads x (key + value head size) x element size."""
    try:
        bk, bv = KV_TYPE_BYTES[type_k.lower()], KV_TYPE_BYTES[type_v.lower()]
    except KeyError as exc:
        raise ValueError(f"unknown KV cache type {exc.args[0]!r}; use {sorted(KV_TYPE_BYTES)}") from None
    per_cell = shape.n_kv_heads * (shape.head_dim_k * bk + shape.head_dim_v * bv)
    full_cells, swa_cells = kv_cells(shape, n_ctx, n_ubatch, swa_full)
    n_swa = min(shape.swa_layers, shape.n_layers)
    return int(per_cell * ((shape.n_layers - n_swa) * full_cells + n_swa * swa_cells))


def compute_bytes(shape: ModelShape, n_ubatch: int = 512) -> int:
    """Resident CPU compute: the logits of one output row plus a ubatch of activations."""
    return shape.n_vocab * 4 + n_ubatch * shape.n_embd * 4 * 4


def gpu_compute_bytes(shape: ModelShape, n_ctx: int, n_ubatch: int = 512) -> int:
    """What llama.cpp reserves on a GPU: the larger of the ubatch logits and attention scores."""
    logits = shape.n_vocab * n_ubatch * 4
    scores = int(n_ctx * n_ubatch * shape.n_heads * 4 * 1.25)
    return max(logits, scores) + n_ubatch * shape.n_embd * 4 * 8


def overhead_bytes(shape: ModelShape) -> int:
    return BASE_OVERHEAD + PER_VOCAB_TOKEN * shape.n_vocab + shape.repack_bytes


def estimate(
    shape: ModelShape,
    n_ctx: int,
    *,
    type_k: str = "f16",
    type_v: str = "f16",
    n_ubatch: int = 512,
    swa_full: bool = True,
    vram_bytes: int | None = None,
) -> MemoryEstimate:
    """Predict the memory of `shape` loaded with an `n_ctx` context.

    With `vram_bytes`, also split it the way llama.cpp offloads: the GPU first holds the runtime
    and its compute buffer, then whole layers (weights and their KV cache) from the last layer
    down; the runtime's host memory is added to the CPU share.
    """
    if n_ctx <= 0:
        raise ValueError("the context must be at least one token")
    kv = kv_bytes(shape, n_ctx, type_k, type_v, n_ubatch, swa_full)
    comp = compute_bytes(shape, n_ubatch)
    over = overhead_bytes(shape)
    total = shape.weights_bytes + kv + comp + over
    est = MemoryEstimate(
        n_ctx=n_ctx, weights_bytes=shape.weights_bytes, kv_bytes=kv, compute_bytes=comp,
        overhead_bytes=over, total_bytes=total, cpu_bytes=total, source=shape.source,
    )
    if vram_bytes:
        layers, gpu = gpu_split(shape, n_ctx, kv, vram_bytes, n_ubatch)
        moved = int(layers * (shape.weights_bytes + kv) / (shape.n_layers + 1))
        host = GPU_RUNTIME_HOST_BYTES if layers else 0
        est.n_gpu_layers, est.gpu_bytes, est.cpu_bytes = layers, gpu, total - moved + host
    return est


def gpu_split(
    shape: ModelShape, n_ctx: int, kv: int, vram_bytes: int, n_ubatch: int = 512
) -> tuple[int, int]:
    """(layers offloaded, bytes on the GPU) for a VRAM budget; 0 layers when nothing fits."""
    reserve = GPU_RUNTIME_BYTES + gpu_compute_bytes(shape, n_ctx, n_ubatch)
    per_layer = (shape.weights_bytes + kv) / (shape.n_layers + 1)  # +1: the output layer
    room = vram_bytes - reserve
    if room < per_layer:
        return 0, 0
    layers = min(shape.n_layers + 1, int(room // per_layer))
    return layers, int(reserve + layers * per_layer)


def shape_from_gguf(info) -> ModelShape:
    """A ModelShape from a parsed GGUF header (leeroo_local.gguf_info.GGUFInfo)."""
    a = info.arch_value
    n_layers = int(a("block_count", 0) or 0)
    n_embd = int(a("embedding_length", 0) or 0)
    n_heads = _first_int(a("attention.head_count", 0))
    n_kv = _first_int(a("attention.head_count_kv", n_heads)) or n_heads
    if not (n_layers and n_embd and n_heads):
        from .errors import CorruptModel

        raise CorruptModel(
            f"{info.path}: header lacks {info.architecture}.block_count, embedding_length "
            "or attention.head_count; not a language model llama.cpp can load"
        )
    head_k = int(a("attention.key_length", 0) or n_embd // n_heads)
    head_v = int(a("attention.value_length", 0) or n_embd // n_heads)
    window = int(a("attention.sliding_window", 0) or 0)
    vocab = info.array_lengths.get("tokenizer.ggml.tokens") or int(a("vocab_size", 0) or 0)
    # token_embd is read by row lookups (not repacked) unless the output layer is tied to it,
    # in which case llama.cpp also repacks it for the output matmul.
    tied = not any(t.name == "output.weight" for t in info.tensors)
    repack = sum(
        t.n_bytes for t in info.tensors
        if t.type in REPACKED_TYPES and (tied or t.name != "token_embd.weight")
    )
    return ModelShape(
        architecture=info.architecture,
        n_layers=n_layers, n_embd=n_embd, n_heads=n_heads, n_kv_heads=n_kv,
        head_dim_k=head_k, head_dim_v=head_v, n_vocab=vocab,
        n_ctx_train=int(a("context_length", 0) or 0),
        weights_bytes=info.weights_bytes,
        sliding_window=window,
        swa_layers=swa_layer_count(
            info.architecture, n_layers, window, a("attention.sliding_window_pattern")
        ),
        repack_bytes=repack,
        source="gguf",
    )


def shape_from_catalog(expert, quant) -> ModelShape:
    """A ModelShape from catalog facts: the file size stands in for the weights (an estimate).

    Without the tensor list, the CPU backend's repacked copies are not counted: the file pages
    they copy are clean page cache the kernel can reclaim, so a budget need not hold them.
    """
    arch = expert.arch
    return ModelShape(
        architecture=arch.architecture,
        n_layers=arch.n_layers, n_embd=arch.n_embd, n_heads=arch.n_heads,
        n_kv_heads=arch.n_kv_heads, head_dim_k=arch.head_dim, head_dim_v=arch.head_dim,
        n_vocab=arch.n_vocab, n_ctx_train=arch.n_ctx_train,
        weights_bytes=quant.size_bytes,
        sliding_window=arch.sliding_window, swa_layers=arch.swa_layers,
        source="catalog",
    )


def _first_int(value) -> int:
    """Head counts may be per-layer arrays in some architectures; take the largest."""
    if isinstance(value, list):
        return int(max(value)) if value else 0
    return int(value or 0)
