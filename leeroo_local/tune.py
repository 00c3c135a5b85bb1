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


# -- speculative decoding --------------------------------------------------------------------

SPEC_CODE = '''Add type hints to this function and return it unchanged otherwise:

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
SPEC_PROSE = "Write a short story about a lighthouse keeper who finds a message in a bottle."
SPEC_PROMPTS = {"code": SPEC_CODE, "prose": SPEC_PROSE}
SPEC_MARGIN = 1.05
"""A choice pays if its decode rate over "alone" has a geometric mean over the prompts of at
least this, and no prompt is slower than SPEC_FLOOR x alone."""
SPEC_FLOOR = 0.9


class SpecOption(BaseModel):
    """One way to decode an expert, measured on each prompt kind."""

    option: str = Field(description='"alone", "ngram", or the id of the drafting expert.')
    tok_s: dict[str, float] = Field(description="Median decode rate per prompt kind.")
    speedup: dict[str, float] = Field(default_factory=dict,
                                      description="tok_s over alone's, per prompt kind.")
    same_answer: dict[str, bool] = Field(
        default_factory=dict, description="Greedy answer equal to alone's (batched verification "
        "may round a near tie the other way).")


class SpecTuning(BaseModel):
    """What `tune --speculative` measured for one expert, and what it chose."""

    expert: str
    backend: str
    rounds: int
    tokens: int
    options: list[SpecOption]
    chosen: str | None = Field(description='The option that pays most ("ngram" or a draft '
                               "expert's id); None: none pays, decode alone.")


def choose(options: list[SpecOption], margin: float = SPEC_MARGIN,
           floor: float = SPEC_FLOOR) -> str | None:
    """The option with the best geometric-mean speed-up over "alone", if it pays (see
    SPEC_MARGIN); None otherwise."""
    best, best_gain = None, margin
    for o in options:
        if o.option == "alone" or not o.speedup:
            continue
        gain = statistics.geometric_mean([max(v, 1e-9) for v in o.speedup.values()])
        if gain >= best_gain and min(o.speedup.values()) >= floor:
            best, best_gain = o.option, gain
    return best


def _decode_rate(backend, prompt: str, tokens: int) -> tuple[float, str]:
    """(decode tokens/s after the first token, the answer) of one greedy completion."""
    import time

    from .backends.base import Final, Request, Sampling

    pieces, first, n = [], None, 0
    for event in backend.stream(Request(Sampling(max_tokens=tokens, temperature=0.0, seed=1),
                                        prompt=prompt)):
        if isinstance(event, Final):
            n = event.completion_tokens
        else:
            first = first or time.perf_counter()
            pieces.append(event)
    ended = time.perf_counter()
    return ((n - 1) / (ended - first) if first and n > 1 else 0.0), "".join(pieces)


def measure_speculative(expert: str, path: Path, drafts: dict[str, Path], *,
                        llama_server: str | None, n_ctx: int = 4096, rounds: int = 3,
                        tokens: int = 96, threads: int = 0) -> SpecTuning:
    """Decode `path` alone, with each draft (llama-server only) and with prompt lookup, on a
    code prompt that copies its input and on a prose one, greedy, `rounds` times each; choose
    what pays. `llama_server`: its binary, or None to measure the worker (prompt lookup only).
    Each option gets a fresh process (the expert loaded with that option)."""
    from .backends.llama_server import LlamaServer
    from .backends.worker import Worker

    names: dict[str, str | None] = {"alone": None, "ngram": "ngram"}
    if llama_server:
        names.update({d: str(p) for d, p in drafts.items()})
    runs: dict[str, dict[str, list[float]]] = {n: {k: [] for k in SPEC_PROMPTS} for n in names}
    answers: dict[str, dict[str, str]] = {n: {} for n in names}
    for name, draft in names.items():
        backend = LlamaServer(llama_server, parallel=1) if llama_server else Worker()
        try:
            backend.load(str(path), n_ctx, threads, draft=draft)
            for _ in range(rounds):
                for kind, prompt in SPEC_PROMPTS.items():
                    rate, text = _decode_rate(backend, prompt, tokens)
                    runs[name][kind].append(rate)
                    answers[name][kind] = text
        finally:
            backend.close()
    options = []
    for name, by_kind in runs.items():
        tok_s = {k: statistics.median(v) for k, v in by_kind.items()}
        options.append(SpecOption(option=name, tok_s=tok_s))
    alone = options[0]
    for o in options[1:]:
        o.speedup = {k: o.tok_s[k] / alone.tok_s[k] if alone.tok_s[k] else 0.0 for k in o.tok_s}
        o.same_answer = {k: answers[o.option][k] == answers["alone"][k] for k in o.tok_s}
    return SpecTuning(expert=expert, backend="llama-server" if llama_server else "worker",
                      rounds=rounds, tokens=tokens, options=options, chosen=choose(options))


def save_speculative(results: list[SpecTuning], file: Path | None = None) -> Path:
    """Keep the choices in config.toml's `speculative` (which the runtime reads): a measured
    expert gets its choice, or loses its entry where nothing paid; other entries stay. Written
    as one inline table at the top level (a `[speculative]` table there is folded into it)."""
    import tomllib

    file = file or config_file()
    text = file.read_text(encoding="utf-8") if file.exists() else ""
    try:
        current = dict(tomllib.loads(text).get("speculative") or {})
    except tomllib.TOMLDecodeError as exc:
        raise LeerooError(f"{file}: invalid TOML: {exc}") from None
    for r in results:
        if r.chosen:
            current[r.expert] = r.chosen
        else:
            current.pop(r.expert, None)
    lines, kept, in_table = text.splitlines(), [], False
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("["):
            in_table = stripped.replace(" ", "") == "[speculative]"
            if in_table:
                continue
        if in_table or (not any(ln.strip().startswith("[") for ln in kept)
                        and re.match(r"^\s*speculative\s*=", line)):
            continue
        kept.append(line)
    first_table = next((i for i, ln in enumerate(kept) if ln.lstrip().startswith("[")), len(kept))
    if current:
        inline = ", ".join(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in sorted(current.items()))
        kept.insert(first_table, f"speculative = {{ {inline} }}  # leeroo-local tune --speculative")
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_name(file.name + ".tmp")
    tmp.write_text("\n".join(kept) + "\n", encoding="utf-8")
    tmp.replace(file)
    return file


def tune_speculative(catalog, universe, settings, expert: str | None = None, rounds: int = 3,
                     tokens: int = 96, log=None) -> list[SpecTuning]:
    """Measure speculative decoding for the universe's local members on this machine (or one
    `expert`): each with its candidate drafts (fit.drafts: members of the same tokenizer, much
    smaller) and with prompt lookup, on the backend `serve` would run (llama-server when a
    binary is found and local_backend allows it, else the worker)."""
    from .backends.llama_server import find_llama_server
    from .fit.drafts import candidates, member_files

    files = member_files(catalog, universe)
    if expert is not None:
        if expert not in files:
            raise LeerooError(f"tune: {expert} is not a local member of the universe with its "
                              "file on this machine (`leeroo-local pull` it)")
        targets = [expert]
    else:
        targets = list(files)
    if not targets:
        raise LeerooError("tune: no local member of the universe has its file on this machine")
    binary = (None if settings.local_backend == "worker"
              else find_llama_server(settings.llama_server))
    pairs = candidates(files)
    results = []
    for target in targets:
        drafts = {c.draft: files[c.draft] for c in pairs if c.target == target}
        if log:
            log(f"{target}: alone, ngram" + "".join(f", {d}" for d in drafts if binary)
                + f" on {'llama-server' if binary else 'the worker'}")
        results.append(measure_speculative(target, files[target], drafts, llama_server=binary,
                                           n_ctx=2048, rounds=rounds,
                                           tokens=tokens, threads=settings.n_threads))
    return results
