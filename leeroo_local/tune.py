"""`leeroo-local tune`: measure this machine once and keep the thread counts that decode and read
prompts fastest on it, since the right number depends on the cores, their caches and what else
runs (ggml's threads spin while they wait, so more than the machine can give collapses).

Each candidate runs in a child process of its own (a fresh llama.cpp, like a worker's), in
interleaved rounds so that the machine's drift hits every candidate alike; the median wins.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

from pydantic import BaseModel, Field

from .errors import LeerooError
from .settings import config_file

PROMPT = ("The keeper of the lighthouse wrote in the log every evening: the wind, the ships that "
          "passed, the birds on the rocks and the colour of the sea. ") * 6

_CHILD = """
import json, sys, time
from leeroo_local.backends.base import Sampling
from leeroo_local.backends.llama_cpp import LlamaCppModel
path, threads, tokens, prompt = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
model = LlamaCppModel(path, n_ctx=2048, n_threads=threads, n_threads_batch=threads)
ids = model.tokenize(prompt)
start = time.perf_counter()
first = None
n = 0
for chunk in model.generate(ids, Sampling(max_tokens=tokens, temperature=0.0, seed=1)):
    if chunk.finish_reason:
        n = chunk.completion_tokens
    elif first is None:
        first = time.perf_counter()
end = time.perf_counter()
prompt_s = (first or end) - start
print(json.dumps({"prompt_tok_s": len(ids) / prompt_s if prompt_s > 0 else 0.0,
                  "decode_tok_s": (n - 1) / (end - first) if first and n > 1 else 0.0}))
"""


class Candidate(BaseModel):
    """One thread count, measured."""

    threads: int
    decode_tok_s: float = Field(description="Median decode rate over the rounds.")
    prompt_tok_s: float = Field(description="Median prompt evaluation rate over the rounds.")


class Tuning(BaseModel):
    """What `tune` measured and chose."""

    file: str
    rounds: int
    candidates: list[Candidate]
    n_threads: int = Field(description="Fastest at decoding.")
    n_threads_batch: int = Field(description="Fastest at reading the prompt.")


def measure(path: Path, rounds: int = 3, tokens: int = 64,
            counts: list[int] | None = None) -> Tuning:
    """Every thread count from 1 to the logical cores, `rounds` times, interleaved."""
    counts = counts or list(range(1, (os.cpu_count() or 1) + 1))
    runs: dict[int, list[dict]] = {k: [] for k in counts}
    for _ in range(rounds):
        for k in counts:
            out = subprocess.run([sys.executable, "-c", _CHILD, str(path), str(k), str(tokens),
                                  PROMPT], capture_output=True, text=True)
            if out.returncode != 0:
                raise LeerooError(f"tune: {path.name} with {k} threads failed: "
                                  f"{out.stderr.strip()[-300:]}")
            runs[k].append(json.loads(out.stdout.strip().splitlines()[-1]))
    candidates = [Candidate(threads=k,
                            decode_tok_s=statistics.median(r["decode_tok_s"] for r in v),
                            prompt_tok_s=statistics.median(r["prompt_tok_s"] for r in v))
                  for k, v in runs.items()]
    return Tuning(file=str(path), rounds=rounds, candidates=candidates,
                  n_threads=max(candidates, key=lambda c: c.decode_tok_s).threads,
                  n_threads_batch=max(candidates, key=lambda c: c.prompt_tok_s).threads)


def save(tuning: Tuning, file: Path | None = None) -> Path:
    """Write n_threads and n_threads_batch into config.toml, keeping everything else there: a
    key already set at the top level is replaced in place, else added before the first table."""
    file = file or config_file()
    lines = file.read_text(encoding="utf-8").splitlines() if file.exists() else []
    values = {"n_threads": tuning.n_threads, "n_threads_batch": tuning.n_threads_batch}
    first_table = next((i for i, ln in enumerate(lines) if ln.lstrip().startswith("[")),
                       len(lines))
    for key, value in values.items():
        pattern = re.compile(rf"^\s*{key}\s*=")
        at = next((i for i in range(first_table) if pattern.match(lines[i])), None)
        line = f"{key} = {value}  # leeroo-local tune"
        if at is None:
            lines.insert(first_table, line)
            first_table += 1
        else:
            lines[at] = line
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_name(file.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(file)
    return file
