"""Runtime overheads on the real Gemma starter: leeroo-local's pool versus llama-cpp-python direct.

Measures, with the same GGUF and the same thread count:
  1. decode tokens/s through the service (worker process, streaming) vs Llama() in-process;
  2. cold load to first token through the pool (spare worker ready) vs a bare Llama() load plus
     its first token;
  3. RSS of the whole process tree before a load, while loaded, and after unloading.

Prints a table and writes JSON (--out). Run: python bench/runtime.py [--tokens 128] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import psutil

from leeroo_local.backends.base import Sampling
from leeroo_local.catalog import load_catalog
from leeroo_local.provision.ensure import ensure_local
from leeroo_local.runtime.service import Result, Service
from leeroo_local.settings import load_settings
from leeroo_local.universe import Member, Universe

PROMPT = "Write a short story about a lighthouse keeper who finds a message in a bottle."


def tree_rss() -> int:
    me = psutil.Process()
    total = me.memory_info().rss
    for child in me.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.Error:
            pass
    return total


def direct(path: Path, tokens: int, threads: int, n_ctx: int) -> dict:
    import llama_cpp

    started = time.perf_counter()
    llm = llama_cpp.Llama(str(path), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads,
                          verbose=False)
    prompt = llm.tokenize(PROMPT.encode(), add_bos=True, special=True)
    first = None
    n = 0
    gen = llm.generate(prompt, temp=0.0, top_k=1)
    for _ in gen:
        n += 1
        if first is None:
            first = time.perf_counter()
        if n >= tokens:
            break
    gen.close()
    ended = time.perf_counter()
    llm.close()
    return {"cold_to_first_s": first - started, "tokens_per_s": (n - 1) / (ended - first)}


def through_service(service: Service, expert: str, tokens: int) -> dict:
    sampling = Sampling(max_tokens=tokens, temperature=0.0)
    for event in service.chat([{"role": "user", "content": PROMPT}], expert, sampling):
        if isinstance(event, Result):
            t = event.timings
            return {"cold_to_first_s": t.load_s + t.ttft_s, "tokens_per_s": t.tokens_per_s,
                    "completion_tokens": event.tokens["completion"]}
    raise RuntimeError("no result")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=max(1, (os.cpu_count() or 2) // 2))
    parser.add_argument("--ctx", type=int, default=2048)
    parser.add_argument("--expert", default="gemma-3-270m")
    parser.add_argument("--out", default="bench/results/runtime.json")
    args = parser.parse_args()

    catalog = load_catalog()
    expert = catalog.get(args.expert)
    path = ensure_local(catalog, expert, expert.quant())
    universe = Universe(members=[Member(expert=expert.id, quant=expert.default_quant)], n_ctx=args.ctx)
    settings = load_settings(n_threads=args.threads, keep_alive_s=0)

    rows = {"direct": [], "service": []}
    memory = []
    for _ in range(args.runs):
        rows["direct"].append(direct(path, args.tokens, args.threads, args.ctx))
        service = Service(settings, catalog, universe)
        pool = service.pool()
        pool.ready_spare()
        time.sleep(0.5)
        before = tree_rss()
        rows["service"].append(through_service(service, expert.id, args.tokens))
        loaded = tree_rss()
        pool.unload(f"{expert.id}:{expert.default_quant}")
        pool.ready_spare()
        time.sleep(1.0)
        after = tree_rss()
        memory.append({"before": before, "loaded": loaded, "after_unload": after})
        service.close()

    def med(kind: str, key: str) -> float:
        return statistics.median(r[key] for r in rows[kind])

    result = {
        "expert": expert.id, "threads": args.threads, "tokens": args.tokens, "runs": args.runs,
        "direct_tokens_per_s": med("direct", "tokens_per_s"),
        "service_tokens_per_s": med("service", "tokens_per_s"),
        "direct_cold_to_first_s": med("direct", "cold_to_first_s"),
        "service_cold_to_first_s": med("service", "cold_to_first_s"),
        "memory": memory,
    }
    result["tokens_per_s_ratio"] = result["service_tokens_per_s"] / result["direct_tokens_per_s"]
    result["cold_to_first_ratio"] = result["service_cold_to_first_s"] / result["direct_cold_to_first_s"]
    result["unload_memory_delta"] = statistics.median(
        (m["after_unload"] - m["before"]) / m["before"] for m in memory)

    print(f"{'metric':<34}{'direct':>12}{'leeroo-local':>14}{'ratio':>9}  target")
    print(f"{'decode tokens/s':<34}{result['direct_tokens_per_s']:>12.1f}"
          f"{result['service_tokens_per_s']:>14.1f}{result['tokens_per_s_ratio']:>9.3f}  >= 0.97")
    print(f"{'cold load to first token (s)':<34}{result['direct_cold_to_first_s']:>12.3f}"
          f"{result['service_cold_to_first_s']:>14.3f}{result['cold_to_first_ratio']:>9.3f}  <= 1.2")
    m = memory[-1]
    print(f"{'process tree RSS (MiB) before/loaded/after unload':<50} {m['before'] / 2**20:.0f} / "
          f"{m['loaded'] / 2**20:.0f} / {m['after_unload'] / 2**20:.0f}  "
          f"(after-before: {result['unload_memory_delta']:+.1%}, target within 5%)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
