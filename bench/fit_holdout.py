"""Does S(U) generalise? Fit on a random half of the questions, measure S(U) on the other half.

For each budget and each of --splits random halves of the shipped MMLU-Pro development outcomes:
`fit` runs on one half (exactly as `leeroo-local fit` does), and the chosen universe is scored
on the held-out half. The mean gap |S_train - S_test| must stay within 1.5 points.

A single split cannot be held to 1.5 points: even a universe fixed in advance shows a gap from
sampling alone, with standard deviation 2 sigma / sqrt(N) (sigma: spread of the per-question
oracle score; about 0.94 points here), so some of 20 splits exceed 1.5 by chance. The `noise`
column is the mean |gap| that sampling alone gives (sqrt(2/pi) times that deviation); a fit that
overfits its half would show a mean |gap| above it and a positive mean gap (train > test).

    PYTHONPATH=. python bench/fit_holdout.py [--splits 20] [--json] [--out FILE]
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
from leeroo_local.fit import coverage  # noqa: E402
from leeroo_local.fit_catalog import FitBudget, build_candidates, plan  # noqa: E402
from leeroo_local.outcomes import load_matrix  # noqa: E402
from leeroo_local.units import parse_size  # noqa: E402

TOLERANCE = 1.5  # points
BUDGETS = {
    "--vram 24GB": dict(vram_bytes=parse_size("24GB")),
    "--vram 8GB --ram 16GB": dict(vram_bytes=parse_size("8GB"), ram_bytes=parse_size("16GB")),
    "--vram 12GB": dict(vram_bytes=parse_size("12GB")),
    "--ram 64GB": dict(ram_bytes=parse_size("64GB")),
    "--ram 16GB --swap": dict(ram_bytes=parse_size("16GB"), mode="swap"),
}


def holdout(matrix, catalog, budget: FitBudget, splits: int, seed: int) -> dict:
    full = build_candidates(catalog, matrix, budget)
    index = {(c.expert, c.quant): j for j, c in enumerate(full.candidates)}
    row_of = {q: i for i, q in enumerate(full.question_ids)}
    rng = np.random.default_rng(seed)
    train_s, test_s, sizes = [], [], []
    for _ in range(splits):
        perm = rng.permutation(len(matrix.question_ids))
        half = len(perm) // 2
        train, test = np.sort(perm[:half]), np.sort(perm[half:])
        report = plan(catalog, matrix.rows(train), budget)
        members = [index[(m.id, m.quant)] for m in report.experts]
        test_rows = [row_of[matrix.question_ids[i]] for i in test if matrix.question_ids[i] in row_of]
        train_s.append(report.score)
        test_s.append(coverage(full.quality[test_rows], members))
        sizes.append(len(members))
    gap = 100 * (np.array(train_s) - np.array(test_s))
    values = full.quality[:, members].max(axis=1)  # last split's universe, on all questions
    noise = 100 * 2 * values.std() / np.sqrt(len(values)) * np.sqrt(2 / np.pi)
    return {
        "splits": splits, "experts_mean": float(np.mean(sizes)),
        "s_train_mean": float(100 * np.mean(train_s)), "s_test_mean": float(100 * np.mean(test_s)),
        "gap_mean": float(gap.mean()), "abs_gap_mean": float(np.abs(gap).mean()),
        "abs_gap_max": float(np.abs(gap).max()), "noise_abs_gap": float(noise),
        "within_tolerance": float(np.mean(np.abs(gap) <= TOLERANCE)),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--splits", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ctx", type=int, default=4096)
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ap.add_argument("--out", type=Path, help="also write the JSON here")
    args = ap.parse_args(argv)

    matrix = load_matrix(with_questions=False)
    catalog = load_catalog()
    t0 = time.perf_counter()
    rows = {}
    for label, kw in BUDGETS.items():
        rows[label] = holdout(matrix, catalog, FitBudget(n_ctx=args.ctx, **kw), args.splits, args.seed)
    result = {"bench": "fit_holdout", "questions": len(matrix.question_ids), "tolerance_points": TOLERANCE,
              "seconds": round(time.perf_counter() - t0, 2), "budgets": rows,
              "passed": all(r["abs_gap_mean"] <= TOLERANCE and abs(r["gap_mean"]) <= TOLERANCE
                            for r in rows.values())}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{'budget':<24} {'k':>4} {'S train':>8} {'S test':>8} {'gap':>6} {'|gap|':>6} "
              f"{'max|gap|':>8} {'noise':>6} {'<=1.5':>6}")
        for label, r in rows.items():
            print(f"{label:<24} {r['experts_mean']:>4.1f} {r['s_train_mean']:>8.2f} "
                  f"{r['s_test_mean']:>8.2f} {r['gap_mean']:>+6.2f} {r['abs_gap_mean']:>6.2f} "
                  f"{r['abs_gap_max']:>8.2f} {r['noise_abs_gap']:>6.2f} {100 * r['within_tolerance']:>5.0f}%")
        print(f"{args.splits} random halves of {result['questions']} questions per budget; "
              f"points of S(U); {'PASS' if result['passed'] else 'FAIL'} (mean |gap| <= {TOLERANCE})")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
