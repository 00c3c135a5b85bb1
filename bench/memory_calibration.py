"""The memory model against real llama.cpp loads: predicted vs measured RSS growth.

Each load runs in a fresh process (so nothing earlier pollutes its RSS). Prints a table and writes
JSON. Run: python bench/memory_calibration.py [--ctx 512 2048 8192 32768]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from leeroo_local.catalog import load_catalog
from leeroo_local.gguf_info import read_gguf
from leeroo_local.provision.ensure import ensure_local
from leeroo_local.memory import estimate, shape_from_catalog, shape_from_gguf

MEASURE = """
import json, sys, psutil, llama_cpp
p = psutil.Process()
before = p.memory_info().rss
m = llama_cpp.Llama(sys.argv[1], n_ctx=int(sys.argv[2]), n_threads=1, verbose=False)
print(json.dumps({"rss_growth": p.memory_info().rss - before}))
"""


def measure(path: Path, n_ctx: int) -> int:
    out = subprocess.run([sys.executable, "-c", MEASURE, str(path), str(n_ctx)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["rss_growth"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ctx", type=int, nargs="+", default=[512, 2048, 8192, 32768])
    parser.add_argument("--out", default="bench/results/memory_calibration.json")
    args = parser.parse_args()
    catalog = load_catalog()
    rows = []
    for expert_id in ("gemma-3-270m", "gemma-3-270m-q4_0"):
        expert = catalog.get(expert_id)
        quant = expert.quant()
        path = ensure_local(catalog, expert, quant)
        header_shape = shape_from_gguf(read_gguf(path))
        catalog_shape = shape_from_catalog(expert, quant)
        for n_ctx in args.ctx:
            measured = measure(path, n_ctx)
            header = estimate(header_shape, n_ctx).total_bytes
            cat = estimate(catalog_shape, n_ctx).total_bytes
            rows.append({"expert": expert_id, "quant": quant.type, "n_ctx": n_ctx,
                         "measured_bytes": measured, "predicted_header_bytes": header,
                         "predicted_catalog_bytes": cat,
                         "error_header": (header - measured) / measured,
                         "error_catalog": (cat - measured) / measured})
    print(f"{'expert':<20}{'quant':<8}{'ctx':>7}{'measured MiB':>14}{'header MiB':>12}{'err':>8}"
          f"{'catalog MiB':>13}{'err':>8}")
    for r in rows:
        print(f"{r['expert']:<20}{r['quant']:<8}{r['n_ctx']:>7}{r['measured_bytes'] / 2**20:>14.1f}"
              f"{r['predicted_header_bytes'] / 2**20:>12.1f}{r['error_header']:>+8.1%}"
              f"{r['predicted_catalog_bytes'] / 2**20:>13.1f}{r['error_catalog']:>+8.1%}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2))
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
