"""Speculative decoding where `tune --speculative` would choose it: decode tokens/s of one
expert alone, with a smaller expert of the same tokenizer drafting for it (llama-server), and
with prompt lookup (ngram, on llama-server and on the worker), on a code prompt that copies its
input and on a prose one; greedy. The choice is tune's own rule (leeroo_local.tune.choose: a
geometric-mean gain of at least 5% over the prompts, no prompt below 0.9x).

The starter family stands in for a large model and its small sibling: Gemma 3 270M Q4_K_M
verified, its Q4_0 drafting (both assembled or quantized into a private home, offline); the
pairing itself comes from their GGUF headers (fit.drafts).

    LEEROO_LLAMA_SERVER=PATH python bench/speculative.py [--tokens 96] [--rounds 3]
        [--json bench/results/speculative.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=96)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "speculative.json")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="leeroo-spec-"))
    os.environ["LEEROO_HOME"] = str(home)
    os.environ["HF_HUB_OFFLINE"] = "1"

    from leeroo_local.backends.llama_server import find_llama_server
    from leeroo_local.catalog import load_user_catalog
    from leeroo_local.fit.drafts import candidates
    from leeroo_local.provision.ensure import ensure_local
    from leeroo_local.tune import measure_speculative

    binary = find_llama_server(os.environ.get("LEEROO_LLAMA_SERVER", ""))
    catalog = load_user_catalog()
    files = {}
    for expert in ("gemma-3-270m", "gemma-3-270m-q4_0"):
        entry = catalog.get(expert)
        files[expert] = ensure_local(catalog, entry, entry.quant())
    pairs = [(c.target, c.draft, c.share) for c in candidates(files)]
    print(f"draft candidates from the headers: {pairs}")
    target = "gemma-3-270m"
    drafts = {d: files[d] for t, d, _ in pairs if t == target}
    threads = os.cpu_count() or 1
    results = {}
    try:
        for name, server in (("llama-server", binary), ("worker", None)):
            if name == "llama-server" and binary is None:
                print("no llama-server binary: `leeroo-local llama-server build`, or set "
                      "LEEROO_LLAMA_SERVER; the worker only")
                continue
            results[name] = measure_speculative(target, files[target], drafts,
                                                llama_server=server, rounds=args.rounds,
                                                tokens=args.tokens, threads=threads)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    print(f"{'backend / option':32} {'code tok/s':>11} {'prose tok/s':>12}  same answer  chosen")
    for backend, r in results.items():
        for o in r.options:
            cells = [f"{o.tok_s[k]:6.1f}" + (f" {o.speedup[k]:4.2f}x" if o.speedup else "      ")
                     for k in ("code", "prose")]
            same = "/".join("yes" if v else "no" for v in o.same_answer.values()) or "-"
            print(f"{backend + ' / ' + o.option:32} {cells[0]:>11} {cells[1]:>12}  {same:11}  "
                  f"{'<-' if o.option == r.chosen else ''}")
        print(f"{backend}: tune --speculative would keep {r.chosen or 'none (alone)'}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "machine": {"logical_cores": os.cpu_count(), "load_average_1min": os.getloadavg()[0]},
            "candidates": [{"target": t, "draft": d, "weight_share": s} for t, d, s in pairs],
            "results": {k: r.model_dump() for k, r in results.items()}}, indent=2))


if __name__ == "__main__":
    main()
