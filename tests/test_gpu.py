"""The GPU path on a real GPU: layers offloaded as the VRAM budget allows, the pool's status
showing them, and the energy read from NVML. CPU-only machines skip these (hardware absent);
bench/gpu_check.sh runs them on a machine with an NVIDIA GPU and a CUDA build of llama.cpp."""

import pytest

from helpers import install_tiny_universe
from leeroo_local.backends.base import Sampling
from leeroo_local.hardware import Nvml
from leeroo_local.runtime.service import Result, Service
from leeroo_local.settings import load_settings


def _gpu() -> bool:
    import llama_cpp

    return bool(llama_cpp.llama_supports_gpu_offload()) and Nvml.open() is not None


pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not _gpu(), reason="hardware absent: needs an NVIDIA GPU (NVML) and a "
                                          "GPU build of llama-cpp-python"),
]


def _answer(svc, expert="tiny-1"):
    events = list(svc.chat([{"role": "user", "content": "hello"}], expert,
                           Sampling(max_tokens=8, seed=1)))
    return events[-1]


def test_a_vram_budget_offloads_every_layer_and_reads_nvml_energy(tiny_dir):
    install_tiny_universe(tiny_dir, n=1, n_ctx=256)
    svc = Service(load_settings(n_threads=1, vram_budget="1GB", keep_alive_s=0))
    try:
        result = _answer(svc)
        assert isinstance(result, Result)
        plan = svc.load_plan(svc.local_file("tiny-1", "F32"))
        assert plan.n_gpu_layers == 3 and plan.gpu_bytes > 0  # 2 blocks + the output layer
        loaded = [s for s in svc.pool().status() if s["n_gpu_layers"]]
        assert loaded and loaded[0]["vram_bytes"] == plan.gpu_bytes
        assert "nvml" in result.energy.source and result.energy.joules > 0
    finally:
        svc.close()


def test_without_a_vram_budget_the_gpu_is_left_alone(tiny_dir):
    install_tiny_universe(tiny_dir, n=1, n_ctx=256)
    svc = Service(load_settings(n_threads=1, vram_budget="0B", keep_alive_s=0))
    try:
        result = _answer(svc)
        plan = svc.load_plan(svc.local_file("tiny-1", "F32"))
        assert plan.n_gpu_layers == 0 and plan.cpu_bytes == plan.total_bytes
        assert "nvml" not in result.energy.source
    finally:
        svc.close()
