"""Does int8 dynamic quantization of the policy's ONNX graph (onnxruntime.quantization) make
routing faster without changing its decisions? Issue 9, point 4: ship it only if faster with at
most 1% of decisions changed on the shared development data.

Both graphs route every question of the data (default: the shipped MMLU-Pro development set);
timings interleave the two per prompt so load on the machine hits both alike. Decisions are
compared at cost weight 0, at the eval sweep's weights, and under a mean-cost budget equal to
the best single expert's cost.

    PYTHONPATH=. python bench/policy_int8.py [--policy DIR] [--json] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from leeroo_local.store.outcomes import load_matrix  # noqa: E402
from leeroo_local.policy import load_policy  # noqa: E402
from leeroo_local.policy.base import decide  # noqa: E402
from leeroo_local.policy.evaluate import sweep_weights  # noqa: E402
from leeroo_local.policy.features import prompt_text  # noqa: E402
from leeroo_local.policy.onnx_runtime import quantize_int8  # noqa: E402
from leeroo_local.policy.shipped import shipped_policies  # noqa: E402

MAX_CHANGED = 0.01
INT8_FILE = "policy.int8.onnx"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", default=None, help="policy folder (default: shipped catalog)")
    parser.add_argument("--data", default=None, help="outcome folder (default: shipped MMLU-Pro)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    folder = Path(args.policy) if args.policy else shipped_policies()["catalog"]
    work = Path(tempfile.mkdtemp())
    try:
        for f in folder.iterdir():
            shutil.copy(f, work / f.name)
        quantize_int8(work / "policy.onnx", work / INT8_FILE)
        fp32, int8 = load_policy(work), load_policy(work, INT8_FILE)
        matrix = load_matrix(args.data)
        prompts = [prompt_text(matrix.questions[q]["question"], matrix.questions[q].get("options"))
                   for q in matrix.question_ids if q in matrix.questions]
        P32, P8 = np.empty((len(prompts), len(fp32.experts))), np.empty((len(prompts), len(fp32.experts)))
        t32, t8 = np.empty(len(prompts)), np.empty(len(prompts))
        for i, p in enumerate(prompts):
            order = ((fp32, P32, t32), (int8, P8, t8)) if i % 2 else ((int8, P8, t8), (fp32, P32, t32))
            for router, P, t in order:
                start = time.perf_counter()
                P[i] = router.scores(p)
                t[i] = time.perf_counter() - start
        costs = fp32.costs
        settings = {f"L={w:.4g}": w for w in sweep_weights(costs, 12)}
        changed = {}
        for name, w in settings.items():
            a = np.array([decide(s, costs, w) for s in P32])
            b = np.array([decide(s, costs, w) for s in P8])
            changed[name] = float((a != b).mean())
        best = int(np.argmax(np.nanmean(matrix.select(fp32.labels.columns).scores, axis=0)))
        budget = float(costs[best])
        a = [d.index for d in fp32.decide_batch(P32, max_mean_cost=budget)]
        b = [d.index for d in int8.decide_batch(P8, max_mean_cost=budget)]
        changed[f"max-mean-cost {budget:g}"] = float(np.mean(np.array(a) != np.array(b)))
        size32 = (work / "policy.onnx").stat().st_size
        size8 = (work / INT8_FILE).stat().st_size
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ms32, ms8 = t32 * 1000, t8 * 1000
    worst = max(changed.values())
    faster = np.percentile(ms8, 50) < 0.95 * np.percentile(ms32, 50)
    out = {
        "prompts": len(prompts),
        "fp32": {"p50_ms": float(np.percentile(ms32, 50)), "p99_ms": float(np.percentile(ms32, 99)),
                 "mean_ms": float(ms32.mean()), "bytes": size32},
        "int8": {"p50_ms": float(np.percentile(ms8, 50)), "p99_ms": float(np.percentile(ms8, 99)),
                 "mean_ms": float(ms8.mean()), "bytes": size8},
        "max_abs_score_change": float(np.abs(P32 - P8).max()),
        "changed_decisions": changed,
        "worst_changed": worst,
        "faster": bool(faster),
        "ship_int8": bool(faster and worst <= MAX_CHANGED),
    }
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=2))
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(f"{len(prompts)} prompts, policy {folder}")
    print(f"{'graph':<8}{'p50 ms':>9}{'p99 ms':>9}{'mean ms':>9}{'MB':>8}")
    for k in ("fp32", "int8"):
        print(f"{k:<8}{out[k]['p50_ms']:>9.3f}{out[k]['p99_ms']:>9.3f}{out[k]['mean_ms']:>9.3f}"
              f"{out[k]['bytes'] / 1e6:>8.2f}")
    print(f"largest score change {out['max_abs_score_change']:.4f}; changed decisions:")
    for name, v in changed.items():
        print(f"  {name:<24}{100 * v:>7.2f}%")
    print(f"ship int8: {'yes' if out['ship_int8'] else 'no'} (faster: {faster}, worst change "
          f"{100 * worst:.2f}% vs limit {100 * MAX_CHANGED:.0f}%)")


if __name__ == "__main__":
    main()
