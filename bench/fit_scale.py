"""Scale of the universe constructor: 1,000 candidates x 10,000 questions must fit in under a second.

Synthetic but shaped like real outcome data: 200 experts of varying ability with topic strengths
(a logistic item-response model gives 0/1 outcomes), 5 quantizations each (the lower ones scaled
down by the degradation table), memory from 1 to 40 GB. Times `leeroo_local.fit.greedy.fit` (both
greedy variants, group resolution and the improving moves) at several budgets.

    PYTHONPATH=. python bench/fit_scale.py [--json] [--out FILE] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from leeroo_local.degradation import default_model  # noqa: E402
from leeroo_local.fit.greedy import fit  # noqa: E402

QUANTS = ("Q3_K_M", "Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0")
BITS = np.array([3.9, 4.9, 5.7, 6.6, 8.5])
TARGET_S = 1.0


def synthetic(n_questions: int, n_experts: int, seed: int = 0):
    """(quality [n x experts*5], memory bytes, group per candidate)."""
    rng = np.random.default_rng(seed)
    topics = rng.integers(0, 14, n_questions)
    difficulty = rng.normal(0.0, 1.2, n_questions)
    ability = rng.normal(-0.3, 0.8, n_experts)
    strength = rng.normal(0.0, 0.6, (n_experts, 14))
    logit = ability[None, :] + strength[:, topics].T - difficulty[:, None]
    outcome = (rng.random((n_questions, n_experts)) < 1 / (1 + np.exp(-logit))).astype(np.float32)
    model = default_model()
    factors = np.array([model.factor(q) for q in QUANTS], dtype=np.float32)
    quality = (outcome[:, :, None] * factors[None, None, :]).reshape(n_questions, -1)
    params_b = rng.uniform(0.5, 40.0, n_experts)
    memory = (params_b[:, None] * BITS[None, :] / 8 * 1e9 + 0.5e9).reshape(-1)
    groups = np.repeat(np.arange(n_experts), len(QUANTS))
    return quality, memory, groups


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--questions", type=int, default=10_000)
    ap.add_argument("--experts", type=int, default=200, help="x5 quantizations = candidates")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ap.add_argument("--out", type=Path, help="also write the JSON here")
    args = ap.parse_args(argv)

    quality, memory, groups = synthetic(args.questions, args.experts)
    rows = []
    for budget_gb in (8, 24, 48, 96):
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            choice = fit(quality, memory, groups, budget_gb * 1e9)
            times.append(time.perf_counter() - t0)
        rows.append({
            "budget_gb": budget_gb, "candidates": quality.shape[1], "questions": quality.shape[0],
            "chosen": len(choice.members), "score": round(choice.score, 4),
            "strategy": choice.strategy, "seconds_min": round(min(times), 4),
            "seconds_max": round(max(times), 4), "under_1s": max(times) < TARGET_S,
        })
    result = {"bench": "fit_scale", "machine": platform.machine(), "python": platform.python_version(),
              "numpy": np.__version__, "target_seconds": TARGET_S, "rows": rows,
              "passed": all(r["under_1s"] for r in rows)}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{'budget':>7} {'cands':>6} {'questions':>9} {'chosen':>6} {'S(U)':>7} "
              f"{'strategy':>13} {'min s':>7} {'max s':>7}")
        for r in rows:
            print(f"{r['budget_gb']:>5}GB {r['candidates']:>6} {r['questions']:>9} {r['chosen']:>6} "
                  f"{r['score']:>7.4f} {r['strategy']:>13} {r['seconds_min']:>7.3f} {r['seconds_max']:>7.3f}")
        print("PASS" if result["passed"] else "FAIL", f"(every fit under {TARGET_S:.0f} s)")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
