"""Speculative decoding on the llama-server backend: decode tokens/s of one expert alone, with a
smaller expert of the same tokenizer drafting for it, and with prompt lookup (ngram), on a code
prompt that copies its input and on a prose one. Greedy, so the answers must be the same; a
choice pays only where its rate beats "alone".

The starter family stands in for a large model and its small sibling: Gemma 3 270M Q4_K_M
verified, its Q4_0 drafting (both assembled or quantized into a private home, offline).

    LEEROO_LLAMA_SERVER=PATH python bench/speculative.py [--tokens 96] [--rounds 3] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CODE = '''Add type hints to this function and return it unchanged otherwise:

def merge(left, right):
    result = []
    i = j = 0
    while i < len(left) and j < len(right):
        if left[i] <= right[j]:
            result.append(left[i])
            i += 1
        else:
            result.append(right[j])
            j += 1
    result.extend(left[i:])
    result.extend(right[j:])
    return result

Answer:
def merge('''
PROSE = "Write a short story about a lighthouse keeper who finds a message in a bottle."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=96)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="leeroo-spec-"))
    os.environ["LEEROO_HOME"] = str(home)
    os.environ["HF_HUB_OFFLINE"] = "1"

    from leeroo_local.backends.base import Final, Request, Sampling
    from leeroo_local.backends.llama_server import LlamaServer, find_llama_server
    from leeroo_local.catalog import load_user_catalog
    from leeroo_local.provision.ensure import ensure_local

    binary = find_llama_server(os.environ.get("LEEROO_LLAMA_SERVER", ""))
    if binary is None:
        raise SystemExit("no llama-server binary: `leeroo-local llama-server build`, or set "
                         "LEEROO_LLAMA_SERVER")
    catalog = load_user_catalog()
    target = ensure_local(catalog, catalog.get("gemma-3-270m"), catalog.get("gemma-3-270m").quant())
    drafter = catalog.get("gemma-3-270m-q4_0")
    draft = ensure_local(catalog, drafter, drafter.quant())
    threads = os.cpu_count() or 1
    sampling = Sampling(max_tokens=args.tokens, temperature=0.0, seed=1)
    rows: dict[str, dict] = {}
    for name, choice in (("alone", None), ("draft Q4_0", str(draft)), ("ngram", "ngram")):
        server = LlamaServer(binary, parallel=1)
        server.load(str(target), 4096, threads, draft=choice)
        try:
            for kind, prompt in (("code", CODE), ("prose", PROSE)):
                rates, text = [], ""
                for _ in range(args.rounds):
                    pieces, first, final = [], None, None
                    for event in server.stream(Request(sampling, prompt=prompt)):
                        if isinstance(event, Final):
                            final = event
                        else:
                            first = first or time.perf_counter()
                            pieces.append(event)
                    ended = time.perf_counter()
                    n = final.completion_tokens if final else 0
                    rates.append((n - 1) / (ended - first) if first and n > 1 else 0.0)
                    text = "".join(pieces)
                rows[f"{name} / {kind}"] = {"tok_s": statistics.median(rates), "answer": text}
        finally:
            server.close()
    print(f"{'setup / prompt':24} {'tok/s':>8} {'vs alone':>9}  same answer")
    for key, row in rows.items():
        alone = rows[f"alone / {key.split(' / ')[1]}"]
        row["speedup"] = row["tok_s"] / alone["tok_s"] if alone["tok_s"] else 0.0
        row["same_answer"] = row["answer"] == alone["answer"]
        print(f"{key:24} {row['tok_s']:8.1f} {row['speedup']:8.2f}x  {row['same_answer']}")
    if args.json:
        args.json.write_text(json.dumps({k: {kk: vv for kk, vv in v.items() if kk != "answer"}
                                         for k, v in rows.items()}, indent=2))


if __name__ == "__main__":
    main()
