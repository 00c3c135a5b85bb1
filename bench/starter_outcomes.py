"""Evaluate the starter experts on a sample of MMLU-Pro development questions (real llama.cpp).

Multiple choice scored by each option's length-normalised log-likelihood (lm-evaluation-harness's
acc_norm). Writes a data folder in the shared format (questions.jsonl.gz, outcomes.csv.gz,
experts.csv) — the training data of the starter routing policy — and prints accuracy per expert.

Rebuild (about 10 minutes on 2 cores):
    python bench/starter_outcomes.py --questions 400 --out leeroo_local/data/starter_mmlu_pro
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import random
import time
from pathlib import Path

from leeroo_local.catalog import load_catalog
from leeroo_local.provision.ensure import ensure_all
from leeroo_local.store.outcomes import column_name, default_data_dir
from leeroo_local.selfplay.runner import evaluate
from leeroo_local.selfplay.sources import DatasetSource
from leeroo_local.runtime.service import Service
from leeroo_local.settings import load_settings
from leeroo_local.universe import starter_universe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-chars", type=int, default=1500, help="skip longer questions")
    parser.add_argument("--out", default="leeroo_local/data/starter_mmlu_pro")
    args = parser.parse_args()

    source = DatasetSource(default_data_dir() / "questions.jsonl.gz", name="mmlu-pro-dev")
    rng = random.Random(args.seed)
    pool = [q for q in source.questions if len(q.text) + sum(map(len, q.options)) <= args.max_chars]
    questions = rng.sample(pool, args.questions)
    universe = starter_universe(n_ctx=2048)
    catalog = load_catalog()
    ensure_all(catalog, [(m.expert, m.quant) for m in universe.members])  # assemble, quantize
    service = Service(load_settings(keep_alive_s=0), catalog, universe, client="bench")
    experts = universe.ids()
    scores: dict[str, dict[str, float]] = {q.id: {} for q in questions}
    started = time.perf_counter()
    try:
        for e in experts:
            for i, q in enumerate(questions):
                scores[q.id][e] = evaluate(service, e, q, "loglik")
                if (i + 1) % 50 == 0:
                    print(f"{e}: {i + 1}/{len(questions)} ({time.perf_counter() - started:.0f}s)")
    finally:
        service.close()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with gzip.open(out / "questions.jsonl.gz", "wt", encoding="utf-8") as fh:
        for q in questions:
            fh.write(json.dumps({"id": q.id, "category": q.category, "question": q.text,
                                 "options": q.options, "answer": q.answer}) + "\n")
    buf = io.StringIO()
    writer = csv.writer(buf)
    # Columns name the quantization each expert was measured at (outcomes.column_name), so the
    # store and the policy know these are Q4_K_M / Q4_0 measurements, not full precision.
    quants = {m.expert: m.quant for m in universe.members}
    writer.writerow(["question_id", *(column_name(e, quants[e]) for e in experts)])
    for q in questions:
        writer.writerow([q.id, *(int(scores[q.id][e]) for e in experts)])
    with gzip.open(out / "outcomes.csv.gz", "wt", encoding="utf-8") as fh:
        fh.write(buf.getvalue())
    with (out / "experts.csv").open("w", encoding="utf-8") as fh:
        fh.write("model,family,params_b,active_params_b,instruct,kind\n")
        for e in experts:
            expert = catalog.get(e)
            size_b = expert.quant().size_bytes / 1e9
            fh.write(f"{column_name(e, quants[e])},gemma-3,{expert.arch.params_b},{size_b:.3f},no,"
                     "starter\n")
    (out / "README.md").write_text(
        "# Starter experts on MMLU-Pro (development split sample)\n\n"
        f"Outcomes of {', '.join(experts)} on {len(questions)} MMLU-Pro development questions "
        "(TIGER-AI-Lab/MMLU-Pro, Apache-2.0), scored by length-normalised log-likelihood of each "
        "option (acc_norm) with llama.cpp. Made by `python bench/starter_outcomes.py`. "
        "active_params_b holds the file size in GB: the cost the starter policy weighs. Columns "
        "are named `<expert>@<QUANT>`: the quantization each expert was measured at.\n")
    total = time.perf_counter() - started
    print(f"{'expert':<22}{'accuracy':>10}")
    for e in experts:
        acc = sum(scores[q.id][e] for q in questions) / len(questions)
        print(f"{e:<22}{acc:>10.3f}")
    either = sum(max(scores[q.id].values()) for q in questions) / len(questions)
    print(f"{'oracle (either)':<22}{either:>10.3f}\n{len(questions)} questions in {total:.0f}s; wrote {out}")


if __name__ == "__main__":
    main()
