"""Speed at default settings, side by side in one run: what a user gets without tuning, against
llama.cpp driven directly on the same file. Ratios, not absolute times, are the point (the
machine and its load change the absolute ones).

On the Gemma starter (assembled into a private home from its PyPI packages; no network):
  1. decode tokens/s of `leeroo-local run` at default settings, against llama-cpp-python
     in-process at its best thread count (1 .. logical cores), interleaved rounds;
  2. 8 concurrent streaming clients on one expert through `leeroo-local serve` at default
     settings: aggregate tokens/s against one client's, and against llama.cpp's own llama-server
     driven directly with the very command line `serve` started it with (read from its
     process; both printed), in interleaved rounds with both servers up;
  3. time to first token of a conversation's fourth turn with about 2,000 tokens of history,
     against a 50-token single-turn prompt; then two such conversations alternating on one
     expert (each turn after the other conversation's).

Only public surfaces are used (the CLI, HTTP, llama_cpp), so the numbers are what a user sees.
Prints a table; --json FILE writes the numbers.

    python bench/speed_defaults.py [--rounds 3] [--tokens 128] [--json FILE] [--baseline TREE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
EXPERT = "gemma-3-270m"
PROMPT = "Write a short story about a lighthouse keeper who finds a message in a bottle."


def cli(home: Path, *args: str, timeout: float = 600, **env_extra: str
        ) -> subprocess.CompletedProcess:
    env = {**os.environ, "LEEROO_HOME": str(home), "HF_HUB_OFFLINE": "1", **env_extra}
    return subprocess.run([sys.executable, "-m", "leeroo_local.cli", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def starter_file(home: Path) -> Path:
    done = cli(home, "pull", EXPERT)
    if done.returncode != 0:
        raise SystemExit(f"pull {EXPERT}: {done.stderr.strip()}")
    return home / "models" / "gemma-3-270m-q4_k_m.gguf"


# -- 1. threads ------------------------------------------------------------------------------

def run_tokens_per_s(home: Path, tokens: int, **env: str) -> float:
    done = cli(home, "run", PROMPT, "--expert", EXPERT, "--json", "-n", str(tokens), "-t", "0",
               "--seed", "1", **env)
    if done.returncode != 0:
        raise SystemExit(f"run: {done.stderr.strip()}")
    return json.loads(done.stdout)["timings"]["tokens_per_s"]


def llama_tokens_per_s(path: Path, threads: int, tokens: int) -> float:
    code = f"""
import time, llama_cpp
llm = llama_cpp.Llama({str(path)!r}, n_ctx=4096, n_threads={threads}, n_threads_batch={threads},
                      verbose=False)
toks = llm.tokenize({PROMPT!r}.encode())
n, first, start = 0, None, time.perf_counter()
for tok in llm.generate(toks, temp=0.0, top_k=1):
    n += 1
    if first is None:
        first = time.perf_counter()
    if n >= {tokens}:
        break
print((n - 1) / (time.perf_counter() - first))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise SystemExit(out.stderr[-2000:])
    return float(out.stdout.strip().splitlines()[-1])


def threads_section(home: Path, path: Path, rounds: int, tokens: int) -> dict:
    counts = list(range(1, (os.cpu_count() or 2) + 1))
    ours, before, theirs = [], [], {k: [] for k in counts}
    previous = str(max(1, (os.cpu_count() or 2) // 2))  # the default before: half the cores
    for _ in range(rounds):  # interleaved: the machine's drift hits both alike
        ours.append(run_tokens_per_s(home, tokens))
        before.append(run_tokens_per_s(home, tokens, LEEROO_N_THREADS=previous))
        for k in counts:
            theirs[k].append(llama_tokens_per_s(path, k, tokens))
    best_k = max(counts, key=lambda k: statistics.median(theirs[k]))
    run_med, best = statistics.median(ours), statistics.median(theirs[best_k])
    return {"run_default_tok_s": run_med, "run_previous_default_tok_s": statistics.median(before),
            "previous_default_threads": int(previous), "llama_cpp_by_threads": {
        k: statistics.median(v) for k, v in theirs.items()}, "llama_cpp_best_threads": best_k,
        "llama_cpp_best_tok_s": best, "ratio": run_med / best, "target": 0.95}


# -- 2. concurrency --------------------------------------------------------------------------

def start(cmd: list[str], env: dict, ready: str, timeout: float = 120, cwd: Path = ROOT
          ) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, cwd=cwd)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        if ready in line:
            threading.Thread(target=proc.stdout.read, daemon=True).start()  # keep it draining
            return proc, line
    proc.kill()
    raise SystemExit(f"{cmd[0]} did not start")


def stream_tokens(base: str, model: str, prompt: str, tokens: int) -> tuple[int, float, float]:
    """(completion tokens, seconds to the first token, total seconds) of one streamed request."""
    started, first, n = time.perf_counter(), None, 0
    body = {"model": model, "messages": [{"role": "user", "content": prompt}], "stream": True,
            "max_tokens": tokens, "temperature": 0, "stream_options": {"include_usage": True}}
    with httpx.stream("POST", base + "/v1/chat/completions", json=body, timeout=600) as resp:
        for line in resp.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            data = json.loads(line[6:])
            if data.get("usage"):
                n = data["usage"]["completion_tokens"]
            elif data["choices"] and data["choices"][0]["delta"].get("content") and first is None:
                first = time.perf_counter()
    return n, (first or time.perf_counter()) - started, time.perf_counter() - started


def aggregate(base: str, model: str, clients: int, tokens: int) -> float:
    results = [None] * clients

    def one(i: int) -> None:
        results[i] = stream_tokens(base, model, f"{PROMPT} (version {i})", tokens)

    started = time.perf_counter()
    threads = [threading.Thread(target=one, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(r[0] for r in results) / (time.perf_counter() - started)


def serve_llama_server_cmd(serve: subprocess.Popen) -> list[str] | None:
    """The command line `serve` started its llama-server expert with (its child process)."""
    import psutil

    for child in psutil.Process(serve.pid).children(recursive=True):
        try:
            cmd = child.cmdline()
        except psutil.Error:
            continue
        if cmd and "llama-server" in Path(cmd[0]).name:
            return cmd
    return None


def direct_cmd(cmd: list[str], port: int) -> list[str]:
    """The same command on another port: llama-server driven directly, like with like."""
    out = list(cmd)
    out[out.index("--port") + 1] = str(port)
    return out


def concurrency_section(home: Path, path: Path, tokens: int, rounds: int,
                        baseline: Path | None = None) -> dict:
    """Interleaved rounds with every server up (serve 1 client; then serve, llama-server direct
    and, with `baseline`, serve from that source tree, 8 clients each, in an order that turns
    each round), so the machine's drift hits all alike; medians."""
    env = {**os.environ, "LEEROO_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    serve_cmd = [sys.executable, "-m", "leeroo_local.cli", "serve", "--port", "0"]
    procs: list[subprocess.Popen] = []
    bases: dict[str, tuple[str, str]] = {}
    out: dict = {}
    try:
        proc, line = start(serve_cmd, env, "serving")
        procs.append(proc)
        bases["serve"] = (line.split(" at ")[-1].strip().removesuffix("/v1"), EXPERT)
        stream_tokens(bases["serve"][0], EXPERT, PROMPT, 8)  # loaded
        served_cmd = serve_llama_server_cmd(proc)
        out["serve_backend"] = "llama-server" if served_cmd else "worker"
        if served_cmd:
            own = direct_cmd(served_cmd, 18931)
            out["serve_llama_server_cmd"] = " ".join(served_cmd)
            out["direct_llama_server_cmd"] = " ".join(own)
            direct, _ = start(own, env, "listening")
            procs.append(direct)
            bases["direct"] = ("http://127.0.0.1:18931", "x")
        if baseline is not None:  # python -m runs the package of its working directory
            before, line = start(serve_cmd, env, "serving", cwd=baseline)
            procs.append(before)
            bases["serve_before"] = (line.split(" at ")[-1].strip().removesuffix("/v1"), EXPERT)
            out["serve_before_tree"] = str(baseline)
        for base, model in bases.values():
            stream_tokens(base, model, PROMPT, 8)
        ones, runs = [], {k: [] for k in bases}
        names = list(bases)
        for r in range(rounds):
            ones.append(aggregate(bases["serve"][0], EXPERT, 1, tokens))
            for who in names[r % len(names):] + names[:r % len(names)]:
                runs[who].append(aggregate(*bases[who], 8, tokens))
    finally:
        for p in procs:
            p.terminate()
            p.wait(30)
    one, eight = statistics.median(ones), statistics.median(runs["serve"])
    out.update({"serve_1_client_tok_s": one, "serve_8_clients_tok_s": eight,
                "scaling": eight / one, "target_scaling": 2.0,
                "serve_8_clients_rounds": runs["serve"]})
    if runs.get("direct"):
        direct_med = statistics.median(runs["direct"])
        out["llama_server_8_clients_tok_s"] = direct_med
        out["llama_server_8_clients_rounds"] = runs["direct"]
        out["vs_llama_server"] = eight / direct_med
        out["vs_llama_server_by_round"] = [a / b for a, b in zip(runs["serve"], runs["direct"])]
        out["target_vs_llama_server"] = 0.9
        if runs.get("serve_before"):
            before_med = statistics.median(runs["serve_before"])
            out["serve_before_8_clients_tok_s"] = before_med
            out["serve_before_8_clients_rounds"] = runs["serve_before"]
            out["before_vs_llama_server"] = before_med / direct_med
            out["before_vs_llama_server_by_round"] = [
                a / b for a, b in zip(runs["serve_before"], runs["direct"])]
    return out


# -- 3. multi-turn time to first token ------------------------------------------------------

def conversation(turn_words: int) -> list[dict]:
    """Three earlier turns, about 2,000 tokens in all, and a fourth question."""
    text = ("The keeper wrote down the weather, the ships and the birds, as every evening. " * 40)
    history = []
    for i in range(3):
        history += [{"role": "user", "content": f"Part {i}: {text[: turn_words * 6]}"},
                    {"role": "assistant", "content": f"Noted part {i}."}]
    return history + [{"role": "user", "content": "What did the keeper write down?"}]


def ttft(base: str, messages: list[dict]) -> float:
    started, first = time.perf_counter(), None
    body = {"model": EXPERT, "messages": messages, "stream": True, "max_tokens": 4,
            "temperature": 0}
    with httpx.stream("POST", base + "/v1/chat/completions", json=body, timeout=600) as resp:
        for line in resp.iter_lines():
            if line.startswith("data: {") and json.loads(line[6:])["choices"] and \
                    json.loads(line[6:])["choices"][0]["delta"].get("content"):
                first = time.perf_counter()
                break
    return (first or time.perf_counter()) - started


def multiturn_section(home: Path, rounds: int) -> dict:
    env = {**os.environ, "LEEROO_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    proc, line = start([sys.executable, "-m", "leeroo_local.cli", "serve", "--port", "0"], env,
                       "serving")
    base = line.split(" at ")[-1].strip().removesuffix("/v1")
    short = [{"role": "user", "content": "Name three colours of the sea at dawn, briefly."}]
    a, b = conversation(110), conversation(105)
    b[0]["content"] = "Another log. " + b[0]["content"]
    try:
        ttft(base, short)
        singles, fourth, alternating = [], [], []
        for i in range(rounds):
            ttft(base, a[:-1] + [{"role": "user", "content": f"Warm-up {i}"}])  # turn 3 seen
            fourth.append(ttft(base, a[:-1] + [{"role": "user", "content": f"Question {i}?"}]))
            singles.append(ttft(base, [{"role": "user", "content": f"{short[0]['content']} {i}"}]))
            ttft(base, a[:-1] + [{"role": "user", "content": f"Again {i}"}])
            ttft(base, b[:-1] + [{"role": "user", "content": f"Again {i}"}])
            alternating.append(ttft(base, a[:-1] + [{"role": "user", "content": f"Then {i}?"}]))
            alternating.append(ttft(base, b[:-1] + [{"role": "user", "content": f"Then {i}?"}]))
    finally:
        proc.terminate()
        proc.wait(30)
    single = statistics.median(singles)
    return {"single_turn_50_tokens_ttft_s": single,
            "fourth_turn_2000_tokens_ttft_s": statistics.median(fourth),
            "fourth_turn_ratio": statistics.median(fourth) / single,
            "two_conversations_alternating_ttft_s": statistics.median(alternating),
            "alternating_ratio": statistics.median(alternating) / single, "target_ratio": 1.5}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--only", choices=["threads", "concurrency", "multiturn"])
    parser.add_argument("--json", type=Path, help="write the numbers here")
    parser.add_argument("--baseline", type=Path,
                        help="a source tree (e.g. a git worktree of an earlier commit) whose "
                        "serve also runs in the concurrency rounds: before/after in one run")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="leeroo-speed-"))
    try:
        path = starter_file(home)
        results = {"machine": {"logical_cores": os.cpu_count(),
                               "load_average_1min": os.getloadavg()[0]}}
        if args.only in (None, "threads"):
            results["threads"] = threads_section(home, path, args.rounds, args.tokens)
        if args.only in (None, "concurrency"):
            results["concurrency"] = concurrency_section(home, path, args.tokens, args.rounds,
                                                         args.baseline)
        if args.only in (None, "multiturn"):
            results["multiturn"] = multiturn_section(home, args.rounds)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    for section, numbers in results.items():
        print(f"[{section}]")
        for key, value in numbers.items():
            if isinstance(value, list):
                value = " ".join(f"{v:.2f}" for v in value)
            print(f"  {key:38} {value:.3f}" if isinstance(value, float) else f"  {key:38} {value}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
