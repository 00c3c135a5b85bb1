"""Hosts and failover with real processes: what a killed host costs the requests in flight.

Three `leeroo-local serve` processes on 127.0.0.1, each with a home of its own and the tiny
fixture experts (tests/tiny_gguf.py: real llama.cpp models with random weights): two are hosts
(`desk`, `laptop`), the third is this machine's server (`front`), which adds them (`hosts add`),
trains a routing policy on topic data (`policy train`) and places the experts with
`fit --host local=8MB --host desk=8MB --host laptop=8MB --save` (one expert per machine). Then
N streamed `auto` requests at concurrency C go to `front`, all of them prompts the policy routes
to the expert one host holds; after K have been answered that host gets SIGKILL.

Each request is: answered (its stream ended with [DONE]), fallen back (answered by another
member after the host failed it; the front's request log records it), cut (an error after its
first token: the expert died mid-answer, reported as today), or lost (an error before any text:
what fallback must make zero). Also: rows in the front's request log for the requests (one
each), and p50 latency of the whole answer before and after the kill.

Prints a table and writes JSON (--out). Run: python bench/hosts_failover.py [--requests 120]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's leeroo_local
sys.path.insert(0, str(ROOT / "tests"))  # the tiny fixture experts and the topic data

import httpx  # noqa: E402
from helpers import tiny_expert_toml  # noqa: E402
from outcome_folder import TOPICS, topic_matrix, write_folder  # noqa: E402
from tiny_gguf import write_tiny_llama  # noqa: E402

EXPERTS = {"mathy": 1, "lawyer": 2, "generalist": 3}
N_CTX = 256
BUDGET = "8MB"  # a tiny expert needs ~5.3 MB at 256 tokens: one per machine
CLI = [sys.executable, "-c", "from leeroo_local.cli import main; main()"]


def home_for(root: Path, name: str, tiny: Path, universe: list[str] | None) -> dict:
    home = root / name
    (home / "config").mkdir(parents=True)
    (home / "config" / "models.toml").write_text(
        "".join(tiny_expert_toml(e, tiny, f"tiny-{i}.gguf", e) for e, i in EXPERTS.items()))
    if universe:
        (home / "config" / "universe.json").write_text(json.dumps(
            {"members": [{"expert": e, "quant": "F32"} for e in universe], "n_ctx": N_CTX}))
    return {**os.environ, "LEEROO_HOME": str(home), "LEEROO_N_THREADS": "1",
            "LEEROO_RAM_BUDGET": "256MB", "LEEROO_KEEP_ALIVE_S": "600"}


def serve(env: dict) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([*CLI, "serve", "--port", "0", "--no-pull", "--log-level", "error"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    found = re.search(r"at (http://127\.0\.0\.1:\d+/v1)", line)
    if not found:
        proc.kill()
        raise RuntimeError(f"serve did not start: {line!r}")
    return proc, found.group(1)


def run_cli(env: dict, *args: str) -> str:
    done = subprocess.run([*CLI, *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"leeroo-local {' '.join(args)}: {done.stderr or done.stdout}")
    return done.stdout


def stream(url: str, prompt: str, max_tokens: int) -> dict:
    """One streamed auto request: its outcome, seconds, and whether text came before an error."""
    started = time.perf_counter()
    text, error = False, None
    try:
        with httpx.stream("POST", url + "/chat/completions", timeout=60, json={
                "model": "auto", "stream": True, "max_tokens": max_tokens, "temperature": 0,
                "messages": [{"role": "user", "content": prompt}]}) as resp:
            if resp.status_code != 200:
                resp.read()
                error = f"HTTP {resp.status_code}: {resp.text[:200]}"
            else:
                done = False
                for line in resp.iter_lines():
                    if line == "data: [DONE]":
                        done = True
                    elif line.startswith("data: "):
                        chunk = json.loads(line[6:])
                        if "error" in chunk:
                            error = chunk["error"].get("type") or "error"
                        elif any(c.get("delta", {}).get("content") for c in chunk.get("choices", [])):
                            text = True
                if not done and error is None:
                    error = "stream ended without [DONE]"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"
    return {"started": started, "seconds": time.perf_counter() - started, "text": text,
            "error": error}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=120)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--kill-after", type=int, default=30, help="answers before the kill")
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--out", default="bench/results/hosts_failover.json")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="leeroo-hosts-"))
    tiny = root / "tiny"
    tiny.mkdir()
    for e, i in EXPERTS.items():
        write_tiny_llama(tiny / f"tiny-{i}.gguf", seed=i, name=f"tiny-{i}")
    procs: dict[str, subprocess.Popen] = {}
    try:
        urls = {}
        for name in ("desk", "laptop"):
            procs[name], urls[name] = serve(home_for(root, name, tiny, list(EXPERTS)))
        front_env = home_for(root, "front", tiny, None)
        for name, url in urls.items():
            run_cli(front_env, "hosts", "add", name, url)
        scores, columns, texts, _ = topic_matrix(n=240, seed=5)
        data = write_folder(root / "topics", scores, columns, texts=texts)
        run_cli(front_env, "policy", "train", "--data", str(data), "--out",
                str(root / "front" / "policies" / "topics"))
        placed = json.loads(run_cli(front_env, "fit", "--data", str(data), "--ctx", str(N_CTX),
                                    "--host", f"local={BUDGET}", "--host", f"desk={BUDGET}",
                                    "--host", f"laptop={BUDGET}", "--save", "--json"))
        where = {e["id"]: e["host"] for e in placed["experts"]}
        procs["front"], front = serve(front_env)

        # Prompts the front routes to a member on a host: that host is the one killed.
        by_member: dict[str, list[str]] = {}
        for i in range(90):
            topic = list(TOPICS)[i % 3]
            prompt = " ".join(TOPICS[topic].split()[i % 4:] + ["what", "is", "given", str(i)]) + "?"
            resp = httpx.post(front + "/chat/completions", timeout=60, json={
                "model": "auto", "max_tokens": 1, "messages": [{"role": "user", "content": prompt}]})
            by_member.setdefault(resp.headers["x-leeroo-expert"], []).append(prompt)
        remote = {f"{h}.{e}": h for e, h in where.items() if h != "local"}
        victim_member = max((m for m in by_member if m in remote), key=lambda m: len(by_member[m]))
        victim = remote[victim_member]
        prompts = (by_member[victim_member] * args.requests)[:args.requests]
        db = root / "front" / "leeroo.db"
        first_row = sqlite3.connect(db).execute("select max(id) from requests").fetchone()[0] or 0

        answered = threading.Semaphore(0)
        kill_at: list[float] = []

        def one(prompt: str) -> dict:
            got = stream(front, prompt, args.max_tokens)
            if got["error"] is None:
                answered.release()
            return got

        def killer() -> None:
            for _ in range(args.kill_after):
                answered.acquire()
            kill_at.append(time.perf_counter())
            procs[victim].send_signal(signal.SIGKILL)
            procs[victim].wait(30)

        thread = threading.Thread(target=killer, daemon=True)
        thread.start()
        with ThreadPoolExecutor(args.concurrency) as pool:
            outcomes = list(pool.map(one, prompts))
        thread.join(10)
        time.sleep(0.5)  # the front writes a row when a request's generator ends
        con = sqlite3.connect(db)
        rows = con.execute("select fallback, error from requests where id > ?",
                           (first_row,)).fetchall()
        killed = kill_at[0] if kill_at else float("inf")
        before = [o["seconds"] for o in outcomes if o["started"] + o["seconds"] < killed
                  and o["error"] is None]
        after = [o["seconds"] for o in outcomes if o["started"] > killed and o["error"] is None]
        summary = {
            "hosts": {"desk": urls["desk"], "laptop": urls["laptop"], "front": front},
            "placement": where, "killed_host": victim, "routed_member": victim_member,
            "requests": len(prompts), "concurrency": args.concurrency,
            "max_tokens": args.max_tokens, "killed_after_answers": args.kill_after,
            "answered": sum(o["error"] is None for o in outcomes),
            "fallen_back": sum(1 for fb, _ in rows if fb),
            "cut_after_first_token": sum(1 for o in outcomes if o["error"] and o["text"]),
            "lost": sum(1 for o in outcomes if o["error"] and not o["text"]),
            "log_rows": len(rows),
            "p50_before_s": statistics.median(before) if before else None,
            "p50_after_s": statistics.median(after) if after else None,
            "n_before": len(before), "n_after": len(after),
            "errors": sorted({o["error"] for o in outcomes if o["error"]}),
            "cpu_count": os.cpu_count(), "load_average_1min": os.getloadavg()[0],
        }
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2))
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    print(f"placement: {', '.join(f'{e}@{h}' for e, h in summary['placement'].items())}; "
          f"killed {victim} (holds {victim_member}) after {args.kill_after} answers")
    print(f"{'sent':>6} {'answered':>9} {'fell back':>10} {'cut':>5} {'lost':>5} {'log rows':>9} "
          f"{'p50 before s':>13} {'p50 after s':>12}")

    def s(x):
        return f"{x:.3f}" if x is not None else "-"

    print(f"{summary['requests']:>6} {summary['answered']:>9} {summary['fallen_back']:>10} "
          f"{summary['cut_after_first_token']:>5} {summary['lost']:>5} {summary['log_rows']:>9} "
          f"{s(summary['p50_before_s']):>13} {s(summary['p50_after_s']):>12}")
    print(f"(p50 over {summary['n_before']} answers before the kill, {summary['n_after']} after; "
          f"{os.cpu_count()} cores, load {summary['load_average_1min']:.1f}); JSON: {out}")


if __name__ == "__main__":
    main()
