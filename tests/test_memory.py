"""The memory model against real llama.cpp loads (RSS growth of a fresh process)."""

import json
import subprocess
import sys

import pytest

from leeroo_local.catalog import load_catalog
from leeroo_local.gguf_info import read_gguf
from leeroo_local.memory import (MiB, ModelShape, estimate, kv_bytes, shape_from_catalog,
                                 shape_from_gguf)

MEASURE = """
import json, sys, psutil, llama_cpp
p = psutil.Process()
before = p.memory_info().rss
m = llama_cpp.Llama(sys.argv[1], n_ctx=int(sys.argv[2]), n_threads=1, verbose=False)
print(json.dumps({"rss_growth": p.memory_info().rss - before}))
"""


def measured_growth(path, n_ctx: int) -> int:
    out = subprocess.run([sys.executable, "-c", MEASURE, str(path), str(n_ctx)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["rss_growth"]


@pytest.mark.gemma
@pytest.mark.parametrize("n_ctx", [2048, 32768])
def test_gemma_prediction_within_10_percent(gemma_path, n_ctx):
    predicted = estimate(shape_from_gguf(read_gguf(gemma_path)), n_ctx).total_bytes
    measured = measured_growth(gemma_path, n_ctx)
    assert abs(predicted - measured) / measured < 0.10, (predicted, measured)


def test_tiny_prediction_within_25_percent(tiny_dir):
    path = tiny_dir / "tiny-2.gguf"
    predicted = estimate(shape_from_gguf(read_gguf(path)), 512).total_bytes
    measured = measured_growth(path, 512)
    assert abs(predicted - measured) / measured < 0.25, (predicted, measured)


def test_gemma_sliding_window_layers_follow_llama_cpp(gemma_path):
    shape = shape_from_gguf(read_gguf(gemma_path))
    assert (shape.sliding_window, shape.swa_layers, shape.n_layers) == (512, 15, 18)
    full = kv_bytes(shape, 32768, swa_full=True)
    windowed = kv_bytes(shape, 32768, swa_full=False)
    assert full == 18 * 32768 * 1 * (256 + 256) * 2  # llama-cpp-python default: full-size SWA cache
    assert windowed < full / 4


def test_catalog_estimate_matches_header_estimate(gemma_path):
    expert = load_catalog().get("gemma-3-270m")
    from_catalog = estimate(shape_from_catalog(expert, expert.quant()), 4096).total_bytes
    from_header = estimate(shape_from_gguf(read_gguf(gemma_path)), 4096).total_bytes
    assert abs(from_catalog - from_header) / from_header < 0.10


def test_kv_scales_with_context_and_type(tiny_dir):
    shape = shape_from_gguf(read_gguf(tiny_dir / "tiny-1.gguf"))
    assert kv_bytes(shape, 2048) == 4 * kv_bytes(shape, 512)
    assert kv_bytes(shape, 512, "q8_0", "q8_0") < kv_bytes(shape, 512)
    with pytest.raises(ValueError, match="unknown KV cache type"):
        kv_bytes(shape, 512, "q3_x")


def test_vram_split_offloads_more_with_more_vram():
    expert = load_catalog().get("llama-3.1-8b-instruct")
    shape = shape_from_catalog(expert, expert.quant("Q4_K_M"))
    small = estimate(shape, 8192, vram_bytes=2 * 10**9)
    large = estimate(shape, 8192, vram_bytes=24 * 10**9)
    assert 0 < small.n_gpu_layers < large.n_gpu_layers == shape.n_layers + 1
    assert small.gpu_bytes <= 2 * 10**9 and large.gpu_bytes <= 24 * 10**9
    assert large.cpu_bytes < small.cpu_bytes


# A real GPU (bench/gpu_check.sh on an H200, llama-cpp-python 0.3.36 with CUDA 13): a 1,445 MB
# f16 llama written by tests/tiny_gguf.py, loaded at ctx 4096 with 8 and with all 17 layers
# offloaded. Layers: (GPU bytes nvidia-smi showed the load add, RSS the load added).
H200_SHAPE = ModelShape(architecture="llama", n_layers=16, n_embd=2048, n_heads=16, n_kv_heads=4,
                        head_dim_k=128, head_dim_v=128, n_vocab=259, n_ctx_train=8192,
                        weights_bytes=1_445_200_000)
H200_MEASURED = {17: (2_293_235_712, 127_442_944), 8: (1_408_237_568, 1_016_025_088)}


@pytest.mark.parametrize("layers", sorted(H200_MEASURED))
def test_gpu_split_matches_a_real_gpu_within_10_percent(layers):
    est = next(e for b in range(256, 4096, 8)
               if (e := estimate(H200_SHAPE, 4096, vram_bytes=b * MiB)).n_gpu_layers >= layers)
    assert est.n_gpu_layers == layers
    gpu, rss = H200_MEASURED[layers]
    assert abs(est.gpu_bytes - gpu) / gpu < 0.10
    assert abs(est.cpu_bytes - rss) / rss < 0.10


def test_a_budget_below_the_gpu_runtime_offloads_nothing():
    est = estimate(H200_SHAPE, 4096, vram_bytes=400 * MiB)
    assert est.n_gpu_layers == 0 and est.gpu_bytes == 0 and est.cpu_bytes == est.total_bytes


@pytest.mark.slow
def test_llama_cpp_loads_before_numpy():
    """A CUDA build of llama-cpp-python crashed in every model load when numpy was loaded first
    (seen on an H200): the backend module, which workers import first, loads llama.cpp first."""
    code = ("import sys, leeroo_local.backends.llama_cpp; m = list(sys.modules); "
            "print(m.index('llama_cpp.llama_cpp') < m.index('numpy'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


def test_the_prompt_cache_is_counted_in_what_a_load_needs(tiny_dir):
    from leeroo_local.catalog import load_catalog
    from leeroo_local.runtime.memory_plan import MemoryPlanner
    from leeroo_local.universe import Member, Universe

    universe = Universe(members=[Member(expert="gemma-3-270m", quant="Q4_K_M")], n_ctx=2048)
    path = tiny_dir / "tiny-1.gguf"
    plain = MemoryPlanner(load_catalog(), universe)
    cached = MemoryPlanner(load_catalog(), universe, prompt_cache=2.0)
    kv = plain._estimate(path, None).kv_bytes
    assert plain.cache_bytes(path) == 0 and cached.cache_bytes(path) == 2 * kv > 0
    assert cached.need(path) == plain.need(path) + 2 * kv
