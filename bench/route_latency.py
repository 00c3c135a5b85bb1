"""Latency of one routing decision, tokenization included, on real prompts (MMLU-Pro questions
with their options, as a user would paste them).

Rows: the n-gram tokenizer alone; the subword pieces (the dense part's tokenizer, words
memoised); the policy's scores (n-gram and subword lookups + ONNX graph); a whole decision (scores + cost-aware
choice); and Service.route on a universe of catalog experts (the path `--expert auto` takes: the
policy bound to the universe, quantization factors, swap check). Targets for the whole decision:
p50 <= 0.5 ms, p99 <= 2 ms. Also the first route of a fresh process (a new interpreter: Service
built, policy loaded lazily by the first route, as `run --json` reports it in route.policy_load_s).
`--json` prints p50_ms and p99_ms of the decision row, and every row's numbers.

    PYTHONPATH=. python bench/route_latency.py [--policy DIR] [--prompts 2000] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from leeroo_local.catalog import load_catalog  # noqa: E402
from leeroo_local.store.outcomes import load_matrix  # noqa: E402
from leeroo_local.policy import load_policy  # noqa: E402
from leeroo_local.policy.features import prompt_text  # noqa: E402
from leeroo_local.policy.shipped import shipped_policies  # noqa: E402
from leeroo_local.runtime.service import Service  # noqa: E402
from leeroo_local.settings import load_settings  # noqa: E402
from leeroo_local.universe import Member, Universe  # noqa: E402

P50_TARGET_MS, P99_TARGET_MS = 0.5, 2.0
FIRST_ROUTE = """
import json, sys, time
started = time.perf_counter()
from leeroo_local.catalog import load_catalog
from leeroo_local.runtime.service import Service
from leeroo_local.settings import load_settings
from leeroo_local.universe import Member, Universe
catalog = load_catalog()
members = [Member(expert=e, quant=catalog.get(e).default_quant) for e in sys.argv[2].split(",")]
service = Service(load_settings(policy=sys.argv[1]), catalog, Universe(members=members, origin="user"),
                  client="bench")
imported = time.perf_counter()
route = service.route("Which enzyme breaks down starch in the mouth? A. amylase B. lipase")
print(json.dumps({"imports_s": imported - started, "first_route_s": route.route_s,
                  "policy_load_s": route.policy_load_s}))
"""


def first_route(folder: Path, experts: list[str], runs: int = 3) -> dict:
    """Median over fresh interpreters of the first Service.route (policy load included)."""
    import os
    import subprocess

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    out = [json.loads(subprocess.run([sys.executable, "-c", FIRST_ROUTE, str(folder), ",".join(experts)],
                                     capture_output=True, text=True, check=True, env=env).stdout)
           for _ in range(runs)]
    return {k: float(np.median([o[k] for o in out])) for k in out[0]}


def timed(fn, prompts, warmup: int = 50) -> np.ndarray:
    for p in prompts[:warmup]:
        fn(p)
    out = np.empty(len(prompts))
    for i, p in enumerate(prompts):
        start = time.perf_counter()
        fn(p)
        out[i] = time.perf_counter() - start
    return out * 1000.0


def stats(ms: np.ndarray) -> dict:
    return {"p50_ms": float(np.percentile(ms, 50)), "p90_ms": float(np.percentile(ms, 90)),
            "p99_ms": float(np.percentile(ms, 99)), "mean_ms": float(ms.mean()),
            "max_ms": float(ms.max())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", default=None, help="policy folder (default: shipped catalog)")
    parser.add_argument("--prompts", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    folder = Path(args.policy) if args.policy else shipped_policies()["catalog"]
    matrix = load_matrix()
    recs = [matrix.questions[q] for q in matrix.question_ids]
    pick = np.random.default_rng(args.seed).permutation(len(recs))[: args.prompts]
    prompts = [prompt_text(recs[i]["question"], recs[i].get("options")) for i in pick]

    started = time.perf_counter()
    router = load_policy(folder)
    load_s = time.perf_counter() - started
    catalog = load_catalog()
    members = [Member(expert=e, quant=catalog.get(e).default_quant)
               for e in router.experts if catalog.get(e).quants][:6]
    service = Service(load_settings(policy=str(folder)), catalog,
                      Universe(members=members, origin="user"), client="bench")
    service.router()  # loaded once per Service, like the first request does
    rows = {
        "tokenize": timed(router.featurizer, prompts),
        **({"subword pieces": timed(router.pieces, prompts)} if router.pieces is not None else {}),
        "policy scores": timed(router.scores, prompts),
        "decision (scores + choice)": timed(router.route, prompts),
        "Service.route (universe of %d)" % len(members): timed(service.route, prompts),
    }
    result = {name: stats(ms) for name, ms in rows.items()}
    headline = result["decision (scores + choice)"]
    first = first_route(folder, [m.expert for m in members])
    out = {"p50_ms": headline["p50_ms"], "p99_ms": headline["p99_ms"],
           "targets_met": headline["p50_ms"] <= P50_TARGET_MS and headline["p99_ms"] <= P99_TARGET_MS,
           "policy": str(folder), "onnx_file": router.graph_path.name, "prompts": len(prompts),
           "mean_prompt_chars": float(np.mean([len(p) for p in prompts])),
           "policy_load_s": load_s, "first_route": first, "rows": result}
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(f"{len(prompts)} prompts (mean {out['mean_prompt_chars']:.0f} chars), policy "
          f"{folder.name}/{router.graph_path.name} loaded in {load_s * 1000:.0f} ms")
    print(f"{'path':<34}{'p50 ms':>8}{'p90 ms':>8}{'p99 ms':>8}{'mean':>8}{'max':>8}")
    for name, s in result.items():
        print(f"{name:<34}{s['p50_ms']:>8.3f}{s['p90_ms']:>8.3f}{s['p99_ms']:>8.3f}"
              f"{s['mean_ms']:>8.3f}{s['max_ms']:>8.3f}")
    print(f"first route of a fresh process: {first['first_route_s'] * 1000:.1f} ms, of which "
          f"policy load {first['policy_load_s'] * 1000:.1f} ms (median of 3)")
    print(f"targets (whole decision) p50 <= {P50_TARGET_MS} ms, p99 <= {P99_TARGET_MS} ms: "
          f"{'met' if out['targets_met'] else 'NOT met'}")


if __name__ == "__main__":
    main()
