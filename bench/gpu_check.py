"""The GPU path on a real GPU, in one run: the memory model's GPU/CPU split against what the
driver and the process show, `run --json` on the GPU beside the CPU, and the energy source.

Run by bench/gpu_check.sh on a machine with an NVIDIA GPU and a CUDA build of llama-cpp-python
(on a CPU-only machine it says so and exits 2). Prints a table and writes JSON to --out.

The expert is a llama-architecture GGUF with random f16 weights written by the test helper
(tests/tiny_gguf.py), large enough that a 1 GB budget splits it between GPU and CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

SHAPE = dict(n_embd=2048, n_layers=16, n_heads=16, n_kv_heads=4, n_ff=5632, n_ctx_train=8192)

# Run in a child process per configuration, so each load starts from a clean process and GPU.
MEASURE = r"""
import json, os, subprocess, sys, time
import psutil
def gpu_used():
    out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                         capture_output=True, text=True, check=True).stdout
    return int(out.split()[0]) * 2**20
from leeroo_local.backends.llama_cpp import LlamaCppModel
import llama_cpp
llama_cpp.llama_backend_init()
proc = psutil.Process()
rss0, gpu0 = proc.memory_info().rss, gpu_used()
t = time.perf_counter()
m = LlamaCppModel(sys.argv[1], n_ctx=int(sys.argv[2]), n_gpu_layers=int(sys.argv[3]))
load_s = time.perf_counter() - t
m.tokenize("warm up the compute buffers")
rss1, gpu1 = proc.memory_info().rss, gpu_used()
print(json.dumps({"load_s": load_s, "rss_bytes": rss1 - rss0, "gpu_bytes": gpu1 - gpu0,
                  "gpu_base_bytes": gpu0}))
"""


def sh(*args: str, env: dict | None = None, check: bool = True) -> str:
    done = subprocess.run(args, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if check and done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


def cli(*args: str, env: dict | None = None) -> dict:
    return json.loads(sh(sys.executable, "-m", "leeroo_local.cli", *args, env=env))


def write_expert(folder: Path) -> Path:
    from tiny_gguf import write_tiny_llama

    path = folder / "gpu-1.gguf"
    if not path.exists():
        write_tiny_llama(path, seed=7, f16=True, name="gpu-check", **SHAPE)
    return path


def split_rows(path: Path, ctx: int, budgets: list[str]) -> list[dict]:
    rows = []
    for vram in budgets:
        est = cli("inspect", str(path), "--ctx", str(ctx), "--vram", vram, "--json")
        got = json.loads(sh(sys.executable, "-c", MEASURE, str(path), str(ctx),
                            str(est["n_gpu_layers"])).strip().splitlines()[-1])
        rows.append({"vram": vram, "n_gpu_layers": est["n_gpu_layers"],
                     "est_gpu_bytes": est["gpu_bytes"], "measured_gpu_bytes": got["gpu_bytes"],
                     "est_cpu_bytes": est["cpu_bytes"], "measured_rss_bytes": got["rss_bytes"],
                     "load_s": got["load_s"]})
    return rows


def run_rows(path: Path, ctx: int, home: Path) -> list[dict]:
    from helpers import tiny_expert_toml

    env = {"LEEROO_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    os.environ.update(env)
    from leeroo_local import paths

    paths.config_dir().mkdir(parents=True, exist_ok=True)
    (paths.config_dir() / "models.toml").write_text(
        tiny_expert_toml("gpu-1", path.parent, path.name, params_b=None))
    paths.universe_path().write_text(json.dumps(
        {"members": [{"expert": "gpu-1", "quant": "F32"}], "n_ctx": ctx, "origin": "user"}))
    rows = []
    for device, extra in (("gpu", {}), ("cpu", {"LEEROO_VRAM_BUDGET": "0B"})):
        r = cli("run", "Once upon a time", "--expert", "gpu-1", "--max-tokens", "256",
                "--temperature", "0", "--seed", "1", "--json", env={**env, **extra})
        rows.append({"device": device, "load_s": r["timings"]["load_s"],
                     "ttft_s": r["timings"]["ttft_s"], "tokens_per_s": r["timings"]["tokens_per_s"],
                     "completion_tokens": r["tokens"].get("completion", r["tokens"]),
                     "energy_j": r["energy"]["joules"], "energy_method": r["energy"]["method"],
                     "energy_source": r["energy"]["source"]})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ctx", type=int, default=4096)
    ap.add_argument("--budgets", default="1GB,80GB")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "leeroo-gpu-check")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "gpu_check.json")
    ap.add_argument("--dry-run", action="store_true",
                    help="check this script on a CPU machine (a small model; numbers mean nothing)")
    args = ap.parse_args()
    import llama_cpp

    from leeroo_local.hardware import Nvml

    nvml = Nvml.open()
    if args.dry_run:
        SHAPE.update(n_embd=256, n_layers=4, n_heads=4, n_kv_heads=2, n_ff=512)
    elif not llama_cpp.llama_supports_gpu_offload() or nvml is None:
        raise SystemExit("needs an NVIDIA GPU (NVML) and a CUDA build of llama-cpp-python")
    args.work.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    path = write_expert(args.work)
    report = {"file": str(path), "file_bytes": path.stat().st_size, "ctx": args.ctx,
              "write_s": time.perf_counter() - t,
              "gpu": sh("nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                        "--format=csv,noheader").strip(),
              "split": split_rows(path, args.ctx, args.budgets.split(",")),
              "run": run_rows(path, args.ctx, args.work / "home")}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    mib = 2**20
    print(f"{report['gpu']}; {path.name} {report['file_bytes'] / mib:.0f} MiB, ctx {args.ctx}")
    print("| --vram | layers on GPU | GPU est | GPU measured | err | CPU est | RSS measured | err | load |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in report["split"]:
        eg = (r["est_gpu_bytes"] - r["measured_gpu_bytes"]) / max(1, r["measured_gpu_bytes"])
        ec = (r["est_cpu_bytes"] - r["measured_rss_bytes"]) / max(1, r["measured_rss_bytes"])
        print(f"| {r['vram']} | {r['n_gpu_layers']} | {r['est_gpu_bytes'] / mib:.0f} MiB | "
              f"{r['measured_gpu_bytes'] / mib:.0f} MiB | {eg:+.0%} | {r['est_cpu_bytes'] / mib:.0f} MiB "
              f"| {r['measured_rss_bytes'] / mib:.0f} MiB | {ec:+.0%} | {r['load_s']:.2f} s |")
    print("| run | load | first token | tok/s | energy | source |")
    print("|---|---|---|---|---|---|")
    for r in report["run"]:
        print(f"| {r['device']} | {r['load_s']:.2f} s | {r['ttft_s'] * 1e3:.0f} ms | "
              f"{r['tokens_per_s']:.1f} | {r['energy_j']:.1f} J ({r['energy_method']}) | "
              f"{r['energy_source']} |")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
