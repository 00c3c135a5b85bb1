"""Quantize the Gemma 3 270M starter (Q4_K_M) to smaller types and measure what each loses.

Real llama.cpp throughout: each file is made by llama.cpp's quantizer from the starter's Q4_K_M
(a requantization, as the starter ships no F16), then all are measured in one pass of the
reference with `leeroo_local.quant.evaluate` (the shipped text sample; MMLU-Pro questions). The
table shows measured size, perplexity, KL(ref || cand), top-1 and multiple-choice agreement, and
the factor the fit would use for each (leeroo_local/degradation.py, chained through the table's
Q4_K_M factor since the reference is itself quantized). Nothing is stored in the user's store.

    python bench/quant_starter.py [--tokens 1024] [--questions 20] [--threads 1] [--json out.json]

About 3 minutes on 2 busy cores with the defaults.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's leeroo_local
from leeroo_local.catalog import load_catalog  # noqa: E402
from leeroo_local.degradation import Agreement, from_agreements, table_lookup  # noqa: E402
from leeroo_local.provision.ensure import ensure_local  # noqa: E402
from leeroo_local.quant.evaluate import evaluate  # noqa: E402
from leeroo_local.quant.make import make_quant  # noqa: E402

# (type, token embeddings): "same" forces the type on the embeddings (the shipped starter Q4_0
# recipe); K-quants cannot (Gemma's 640-wide rows are not a multiple of 256), so they get Q4_0
# embeddings; None keeps llama.cpp's own choice (Q8_0 here), for comparison.
VARIANTS = [("Q4_0", "same"), ("Q3_K_S", "Q4_0"), ("Q2_K", "Q4_0"), ("Q2_K", None)]
EXPERT = "gemma-3-270m"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=1024, help="sample tokens (512-token chunks)")
    parser.add_argument("--questions", type=int, default=20, help="MMLU-Pro questions")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", dest="json_out", help="write the results here")
    args = parser.parse_args()

    catalog = load_catalog()
    expert = catalog.get(EXPERT)
    reference = ensure_local(catalog, expert, expert.quant("Q4_K_M"))
    with tempfile.TemporaryDirectory() as tmp:
        made, seconds = [], []
        for qtype, embeddings in VARIANTS:
            started = time.perf_counter()
            out = Path(tmp) / f"{EXPERT}.{qtype}.{embeddings or 'default'}.gguf"
            made.append(make_quant(catalog, str(reference), qtype, out=out, register=False,
                                   allow_requantize=True, embeddings=embeddings))
            seconds.append(time.perf_counter() - started)
        started = time.perf_counter()
        results = evaluate(catalog, str(reference), [str(m.path) for m in made],
                           tokens=args.tokens, questions=args.questions, threads=args.threads)
        eval_s = time.perf_counter() - started
    rows = []
    for (qtype, embeddings), m, r, s in zip(VARIANTS, made, results, seconds):
        fit = from_agreements([Agreement(EXPERT, qtype, "Q4_K_M", r.mc_questions, r.mc_agreed)])
        rows.append({
            "type": qtype, "embeddings": embeddings or "llama.cpp default", "size_bytes": m.size_bytes,
            "size_vs_reference": m.size_bytes / r.reference.size_bytes, "quantize_s": round(s, 1),
            "ppl_reference": r.ppl_reference, "ppl_candidate": r.ppl_candidate,
            "kl_mean": r.kl_mean, "kl_p99": r.kl_p99, "top1_agreement": r.top1_agreement,
            "mc_questions": r.mc_questions, "mc_agreed": r.mc_agreed,
            "mc_accuracy_reference": r.mc_accuracy_reference,
            "mc_accuracy_candidate": r.mc_accuracy_candidate,
            "fit_factor": fit.lookup(qtype, expert=EXPERT).factor,
            "table_factor": table_lookup(qtype).factor,
        })
    ref = results[0]
    print(f"reference {EXPERT} Q4_K_M: {ref.reference.size_bytes / 1e6:.1f} MB, perplexity "
          f"{ref.ppl_reference:.2f} on {ref.tokens_scored} tokens of {ref.sample}, MC accuracy "
          f"{_pct(ref.mc_accuracy_reference)} on {ref.mc_questions} questions; "
          f"measured in {eval_s:.0f} s ({len(made)} candidates, threads {args.threads})")
    head = ("type", "embeddings", "MB", "size", "ppl", "d ppl", "KL mean", "KL p99", "top-1",
            "MC agree", "MC acc", "fit x", "table x")
    print(" | ".join(head))
    for row in rows:
        print(" | ".join([
            row["type"], row["embeddings"], f"{row['size_bytes'] / 1e6:.1f}",
            f"{100 * row['size_vs_reference']:.0f}%", f"{row['ppl_candidate']:.2f}",
            f"{100 * (row['ppl_candidate'] / row['ppl_reference'] - 1):+.1f}%",
            f"{row['kl_mean']:.4f}", f"{row['kl_p99']:.3f}", f"{100 * row['top1_agreement']:.1f}%",
            f"{row['mc_agreed']}/{row['mc_questions']}", _pct(row["mc_accuracy_candidate"]),
            f"{row['fit_factor']:.3f}", f"{row['table_factor']:.3f}"]))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({
            "reference": ref.reference.model_dump(), "tokens_scored": ref.tokens_scored,
            "questions": ref.mc_questions, "eval_s": eval_s, "threads": args.threads,
            "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
