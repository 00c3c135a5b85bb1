"""Faults under load: `leeroo-local serve` on the starter universe, as a user starts it.

N requests (default 200) at concurrency C (default 16): streamed and whole, chat and completions,
each starter expert and `auto`. Mixed in: workers killed with SIGKILL mid-request, clients that
leave (streamed and whole), malformed bodies, prompts over the context; at the end a few streams
are in flight (one long, others queued behind it) when the server gets SIGTERM.

Each request has an expected outcome: an answer, an `expert_crashed` error (a kill hit it), a
4xx naming the problem (bad body, prompt over the context), a cancellation (the client left), or
`server_shutting_down` with `[DONE]` (the SIGTERM). Anything else is unexpected (a 500 that is
not a crash, a stream cut without `[DONE]`, a connection error), and a request with no answer by
its deadline is a hang. Afterwards the server's request log must hold exactly one row per request
(a body refused before any expert too, as `refused (STATUS): ...`), and a request its client left
must be logged as cancelled.

Then (unless --no-hostile) the hostile-input phase of bench/faults_hostile.py against the same
server, before the SIGTERM: out-of-range numbers, huge lists and strings, unencodable text, with
the workers' memory before and after; and after the server has exited, `serve`, `run` and `logs`
on broken copies of its home (garbage database, bad config, garbage universe, read-only, full).

Prints tables; --json prints one JSON object instead. Run: python bench/faults.py
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's leeroo_local

import httpx  # noqa: E402

from leeroo_local import paths  # noqa: E402
from leeroo_local.catalog import load_user_catalog  # noqa: E402
from leeroo_local.provision.ensure import ensure_local  # noqa: E402
from leeroo_local.universe import STARTER  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from faults_hostile import (broken_homes, hostile_phase, loaded_workers, max_row_id,  # noqa: E402
                            rows_after)

EXPERTS = [e for e, _ in STARTER]
MODELS = EXPERTS + ["auto"]
TOPICS = ["the sea", "a lighthouse", "bread", "the moon", "trains", "a violin", "rain", "maps"]
BAD_BODIES = [b"{not json", b'{"model": "auto"}', b'{"model": "auto", "messages": "hi"}',
              b'{"model": "auto", "messages": [{"role": "robot", "content": "x"}]}',
              b'{"model": "../../etc/passwd", "messages": [{"role": "user", "content": "x"}]}',
              b'{"model": "auto", "messages": [{"role": "user", "content": "x"}], "n": 3}']


@dataclass
class Outcome:
    """One request as the client saw it."""

    i: int
    kind: str  # answer | leave | bad | long | shutdown
    model: str
    stream: bool
    started: float = 0.0
    ended: float = 0.0
    status: int | None = None
    code: str | None = None  # the error code, from the body or the stream's error event
    expert: str | None = None
    done: bool = False  # a stream that ended with [DONE]
    left: bool = False  # the client went away on purpose
    verdict: str = ""  # ok | expected | unexpected | hang
    detail: str = ""


def tag(i: int) -> str:
    return f"[#{i}]"


def plan(n: int, shutdown: int, seed: int) -> list[Outcome]:
    """The requests, in a shuffled order; the last `shutdown` run when SIGTERM comes."""
    rng = random.Random(seed)
    body = n - shutdown
    leaves, bad, long = max(10, body // 12), max(4, body // 25), max(4, body // 30)
    kinds = ["leave"] * leaves + ["bad"] * bad + ["long"] * long
    kinds += ["answer"] * (body - len(kinds))
    rng.shuffle(kinds)
    out = [Outcome(i, k, MODELS[i % 3], stream=bool(rng.random() < 0.5)) for i, k in enumerate(kinds)]
    # one long stream, one queued behind it on the same expert, the rest short on the other
    for j in range(shutdown):
        out.append(Outcome(len(kinds) + j, "shutdown", EXPERTS[0] if j < 2 else EXPERTS[1], stream=True,
                           detail="long" if j == 0 else ""))
    return out


class Bench:
    def __init__(self, url: str, n_ctx: int, seed: int, deadline_s: float):
        self.url, self.n_ctx, self.deadline_s = url, n_ctx, deadline_s
        self.rng = random.Random(seed)
        self.finished = 0
        self.lock = threading.Lock()
        self.long_streaming = threading.Event()  # the long stream of the SIGTERM phase started

    # -- one request ---------------------------------------------------------------------------
    def body(self, o: Outcome, max_tokens: int, chat: bool) -> tuple[str, dict]:
        topic = TOPICS[o.i % len(TOPICS)]
        text = f"{tag(o.i)} Write two sentences about {topic}."
        if o.kind == "long":
            text = f"{tag(o.i)} " + "lighthouse " * (self.n_ctx * 2)
        extra = {"model": o.model, "max_tokens": max_tokens, "stream": o.stream}
        if chat:
            return "/v1/chat/completions", {"messages": [{"role": "user", "content": text}], **extra}
        return "/v1/completions", {"prompt": text, **extra}

    def run(self, o: Outcome) -> Outcome:
        o.started = time.monotonic()
        try:
            with httpx.Client(timeout=httpx.Timeout(self.deadline_s, connect=10)) as client:
                if o.kind == "bad":
                    self._bad(client, o)
                else:
                    self._generate(client, o)
        except httpx.TimeoutException as exc:
            if o.left:
                o.verdict = "expected"
            else:
                o.verdict, o.detail = "hang", f"no answer in {self.deadline_s:g} s ({type(exc).__name__})"
        except httpx.HTTPError as exc:
            o.verdict, o.detail = "unexpected", f"{type(exc).__name__}: {exc}"
        o.ended = time.monotonic()
        with self.lock:
            self.finished += 1
        return o

    def _bad(self, client: httpx.Client, o: Outcome) -> None:
        resp = client.post(self.url + "/v1/chat/completions", content=BAD_BODIES[o.i % len(BAD_BODIES)],
                           headers={"content-type": "application/json"})
        o.status = resp.status_code
        o.code = (resp.json().get("error") or {}).get("code")
        ok = resp.status_code in (400, 404, 422) and resp.json().get("error", {}).get("message")
        o.verdict = "expected" if ok else "unexpected"
        o.detail = "" if ok else f"{resp.status_code} {resp.text[:200]}"

    def _generate(self, client: httpx.Client, o: Outcome) -> None:
        chat = o.i % 4 != 3
        tokens = {"answer": self.rng.randint(4, 24), "leave": 400, "long": 8,
                  "shutdown": self.n_ctx if o.detail == "long" else 8}[o.kind]
        path, body = self.body(o, tokens, chat)
        if o.kind == "leave" and not o.stream:  # the client gives up on a whole answer
            client.timeout = httpx.Timeout(60, read=self.rng.uniform(0.3, 1.5))
            o.left = True
        if not o.stream:
            resp = client.post(self.url + path, json=body)
            o.left = False  # the answer came before the client gave up
            o.status = resp.status_code
            data = resp.json()
            o.code = (data.get("error") or {}).get("code")
            o.expert = data.get("model") if resp.status_code == 200 else resp.headers.get("x-leeroo-expert")
            return self._judge(o)
        with client.stream("POST", self.url + path, json=body) as resp:
            o.status = resp.status_code
            o.expert = resp.headers.get("x-leeroo-expert")
            if resp.status_code != 200:
                resp.read()
                o.code = (resp.json().get("error") or {}).get("code")
                return self._judge(o)
            pieces = 0
            for line in resp.iter_lines():
                if line == "data: [DONE]":
                    o.done = True
                elif line.startswith("data: "):
                    event = json.loads(line[6:])
                    if "error" in event:
                        o.code = event["error"].get("code")
                    elif event.get("choices"):
                        pieces += 1
                        if o.kind == "leave" and pieces >= self.rng.randint(2, 6):
                            o.left = True
                            break  # closing the response drops the connection
                        if o.detail == "long" and pieces == 2:
                            self.long_streaming.set()
        self._judge(o)

    def _judge(self, o: Outcome) -> None:
        """Expected or not, from the request's kind and what came back."""
        crashed = o.code == "expert_crashed"
        if o.left:
            o.verdict = "expected"
        elif o.kind == "long":
            ok = o.code == "context_length_exceeded" and (o.status == 400 or o.done)
            o.verdict = "expected" if ok else "unexpected"
        elif o.kind == "shutdown" and o.code == "server_shutting_down" and (o.done or o.status == 503):
            o.verdict = "expected"
        elif o.status == 200 and o.code is None and (o.done or not o.stream):
            o.verdict = "ok"
        elif crashed and (o.status == 500 or o.done):
            o.verdict = "expected"
        else:
            o.verdict = "unexpected"
        if o.verdict == "unexpected":
            o.detail = f"status {o.status}, code {o.code}, [DONE] {o.done}"


# -- faults from outside ---------------------------------------------------------------------

def killer(bench: Bench, server_pid: int, at: list[int], kills: list[dict], stop: threading.Event):
    """SIGKILL a loaded worker each time `at[k]` requests have finished."""
    rng = random.Random(7)
    for threshold in at:
        while bench.finished < threshold and not stop.is_set():
            time.sleep(0.05)
        if stop.is_set():
            return
        for _ in range(200):  # a worker is loaded again soon after a kill
            workers = loaded_workers(server_pid)
            if workers:
                break
            time.sleep(0.05)
        if not workers:
            continue
        pid = rng.choice(sorted(workers))
        os.kill(pid, signal.SIGKILL)
        kills.append({"at": time.monotonic(), "wall": time.time(), "pid": pid,
                      "expert": workers[pid]})


def recovery(kills: list[dict], outcomes: list[Outcome]) -> None:
    """Seconds from each kill to the end of the first later answer from that expert."""
    for k in kills:
        after = [o.ended for o in outcomes if o.verdict == "ok" and o.expert == k["expert"]
                 and o.started >= k["at"]]
        k["recovery_s"] = (min(after) - k["at"]) if after else None


# -- the log ---------------------------------------------------------------------------------

def reloads(db: Path, kills: list[dict]) -> None:
    """The load time of the new worker after each kill (the first load of that expert after it)."""
    con = sqlite3.connect(db)
    loads = con.execute("select created_at, expert, load_s from requests where load_s > 0 "
                        "order by id").fetchall()
    con.close()
    for k in kills:
        after = [(datetime.fromisoformat(t).timestamp(), s) for t, e, s in loads
                 if e == k["expert"] and datetime.fromisoformat(t).timestamp() >= k["wall"]]
        k["reload_s"] = after[0][1] if after else None


def check_log(db: Path, outcomes: list[Outcome], skip: tuple[int, int] | None = None) -> dict:
    """Rows per request (by the tag in its prompt); a request its client left must be logged as
    cancelled, or as finished when it finished before the server noticed. `skip`: the row ids
    (lo, hi] of the hostile phase, counted there."""
    con = sqlite3.connect(db)
    lo, hi = skip or (0, 0)
    rows = con.execute("select prompt, error, finish_reason from requests "
                       "where not (id > ? and id <= ?)", (lo, hi)).fetchall()
    con.close()
    by_tag: dict[int, list] = {}
    for prompt, error, finish in rows:
        m = re.match(r"\[#(\d+)\]", prompt or "")
        if m:
            by_tag.setdefault(int(m.group(1)), []).append((error, finish))
    expected = [o for o in outcomes if o.kind != "bad"]
    missing = [o.i for o in expected if len(by_tag.get(o.i, [])) == 0]
    bad = [o for o in outcomes if o.kind == "bad"]  # untagged bodies: counted as refused rows
    refused = sum(1 for _, error, _ in rows if (error or "").startswith("refused ("))
    if refused < len(bad):
        missing += [o.i for o in bad[refused:]]
    extra = [i for i, r in by_tag.items() if len(r) > 1]
    not_cancelled = []
    for o in expected:
        if o.left and o.i in by_tag:
            error, finish = by_tag[o.i][0]
            if not ((error or "").startswith("cancelled") or finish in ("cancelled", "stop")):
                not_cancelled.append(o.i)
    return {"log_rows": len(rows), "expected_rows": len(outcomes), "missing": missing,
            "duplicated": extra, "not_cancelled": not_cancelled}


# -- main ------------------------------------------------------------------------------------

def prepare_starter() -> Path:
    """Make both starter files present (assemble, quantize) in the user's models folder first."""
    catalog = load_user_catalog()
    for expert in EXPERTS:
        e = catalog.get(expert)
        ensure_local(catalog, e, e.quant())
    return paths.models_dir()


def start_server(home: Path, args) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "LEEROO_HOME": str(home), "LEEROO_N_THREADS": str(args.threads),
           "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "leeroo_local.cli", "serve", "--port", "0", "--ctx", str(args.ctx),
         "--shutdown-grace", str(args.grace), "--log-level", "warning"],
        env=env, stdout=subprocess.PIPE, stderr=open(home / "serve.err", "w"), text=True)
    line = proc.stdout.readline()  # the address is printed on stdout
    m = re.search(r"at (http://[\d.]+:\d+)/v1", line)
    if not m:
        proc.kill()
        raise SystemExit(f"serve did not start: {line!r} {(home / 'serve.err').read_text()[-2000:]}")
    return proc, m.group(1)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", "--n", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--kills", type=int, default=3, help="workers killed with SIGKILL")
    ap.add_argument("--shutdown-streams", type=int, default=3,
                    help="streams in flight (one long, the rest queued) at the SIGTERM")
    ap.add_argument("--grace", type=float, default=2.0, help="serve --shutdown-grace")
    ap.add_argument("--ctx", type=int, default=1024, help="context per expert")
    ap.add_argument("--threads", type=int, default=1, help="llama.cpp threads per expert")
    ap.add_argument("--deadline", type=float, default=180.0, help="seconds before a request hangs")
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--no-hostile", action="store_true",
                    help="skip the hostile-input phase and the broken homes")
    ap.add_argument("--rss-guard-mb", type=float, default=3000,
                    help="kill a worker whose resident memory passes this in the hostile phase")
    ap.add_argument("--keep-home", type=Path, default=None,
                    help="copy the server's home (database, serve.err) here at the end")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()

    models = prepare_starter()
    outcomes = plan(args.requests, args.shutdown_streams, args.seed)
    body, tail = outcomes[: -args.shutdown_streams or None], outcomes[len(outcomes) - args.shutdown_streams:]
    with tempfile.TemporaryDirectory(prefix="leeroo-faults-") as tmp:
        home = Path(tmp)
        (home / "models").symlink_to(models)  # the starter files, made once
        started = time.monotonic()
        proc, url = start_server(home, args)
        bench = Bench(url, args.ctx, args.seed, args.deadline)
        kills: list[dict] = []
        hostile, hostile_ids = None, None
        stop = threading.Event()
        at = [len(body) * (k + 1) // (args.kills + 1) for k in range(args.kills)]
        k_thread = threading.Thread(target=killer, args=(bench, proc.pid, at, kills, stop), daemon=True)
        k_thread.start()
        try:
            with ThreadPoolExecutor(args.concurrency) as pool:
                list(pool.map(bench.run, body))
            stop.set()
            k_thread.join(10)
            if not args.no_hostile:  # the same server, before the SIGTERM
                rows_after(home / "leeroo.db", 0, len(body), wait_s=30)  # the rows of the above first
                hostile = hostile_phase(url, proc.pid, home / "leeroo.db", EXPERTS, args.deadline,
                                        args.rss_guard_mb)
                hostile_ids = (hostile["first_row_id"], max_row_id(home / "leeroo.db"))
            # SIGTERM with streams in flight: the first is long, the others queue behind it
            threads = [threading.Thread(target=bench.run, args=(o,)) for o in tail]
            for t in threads:
                t.start()
                time.sleep(0.3)
            bench.long_streaming.wait(args.deadline)  # the long one is streaming
            proc.send_signal(signal.SIGTERM)
            for t in threads:
                t.join(args.deadline)
            exit_code = proc.wait(args.grace + 60)
        except subprocess.TimeoutExpired:
            exit_code = None
        finally:
            stop.set()
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        wall = time.monotonic() - started
        log = check_log(home / "leeroo.db", outcomes, hostile_ids)
        reloads(home / "leeroo.db", kills)
        if args.keep_home:
            shutil.copytree(home, args.keep_home, symlinks=True, dirs_exist_ok=True)
        homes = [] if args.no_hostile else broken_homes(home, ROOT, args.threads, 120)

    recovery(kills, outcomes)
    lat = [o.ended - o.started for o in outcomes if o.verdict == "ok"]
    count = lambda v: sum(1 for o in outcomes if o.verdict == v)  # noqa: E731
    unexpected = [o for o in outcomes if o.verdict in ("unexpected", "")]
    unexpected_n = len(unexpected) + len(log["not_cancelled"]) + (exit_code != 0)
    summary = {
        "requests": len(outcomes), "concurrency": args.concurrency, "ok": count("ok"),
        "expected_errors": count("expected"), "unexpected_errors": unexpected_n,
        "hangs": count("hang"), "log_rows": log["log_rows"], "expected_log_rows": log["expected_rows"],
        "missing_rows": log["missing"], "duplicated_rows": log["duplicated"],
        "left_but_not_cancelled": log["not_cancelled"],
        "disconnects": sum(1 for o in outcomes if o.left),
        "kills": len(kills), "recovery_s": [k["recovery_s"] for k in kills],
        "reload_s": [k["reload_s"] for k in kills],
        "bad_bodies": sum(1 for o in outcomes if o.kind == "bad"),
        "over_long": sum(1 for o in outcomes if o.kind == "long"),
        "crashed": sum(1 for o in outcomes if o.code == "expert_crashed"),
        "shutdown": {"streams": len(tail), "finished": sum(1 for o in tail if o.verdict == "ok"),
                     "ended_by_server": sum(1 for o in tail if o.code == "server_shutting_down"),
                     "exit_code": exit_code, "grace_s": args.grace},
        "p50_s": percentile(lat, 0.5), "p99_s": percentile(lat, 0.99), "wall_s": wall,
        "unexpected": [asdict(o) for o in unexpected + [o for o in outcomes if o.verdict == "hang"]],
        "hostile": hostile, "broken_homes": homes,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    rec = ", ".join(f"{r:.1f}" if r is not None else "-" for r in summary["recovery_s"])
    rel = ", ".join(f"{r:.1f}" if r is not None else "-" for r in summary["reload_s"])
    print(f"serve on the starter universe ({', '.join(EXPERTS)}), ctx {args.ctx}, "
          f"{args.threads} thread(s) per expert, {wall:.0f} s")
    print("| requests | ok | expected errors | unexpected errors | hangs | log rows / requests "
          "| p50 / p99 latency | kills (recovery s) | disconnects |")
    print("|---|---|---|---|---|---|---|---|---|")
    print(f"| {summary['requests']} (C={args.concurrency}) | {summary['ok']} | "
          f"{summary['expected_errors']} | {summary['unexpected_errors']} | {summary['hangs']} | "
          f"{summary['log_rows']} / {summary['expected_log_rows']} | "
          f"{summary['p50_s'] or 0:.2f} / {summary['p99_s'] or 0:.2f} s | {summary['kills']} ({rec}) | "
          f"{summary['disconnects']} |")
    s = summary["shutdown"]
    print(f"after each kill: the next answer from that expert ended {rec} s later (queue "
          f"included); its new worker loaded in {rel} s")
    print(f"expected errors: {summary['crashed']} expert_crashed (kills), {summary['bad_bodies']} "
          f"bad bodies (4xx, logged as refused), {summary['over_long']} prompts over the context, "
          f"{summary['disconnects']} clients that left; SIGTERM with {s['streams']} streams in "
          f"flight: {s['finished']} finished, {s['ended_by_server']} ended with "
          f"server_shutting_down + [DONE]; exit code {s['exit_code']}")
    for o in summary["unexpected"]:
        print(f"  unexpected #{o['i']} {o['kind']} {o['model']} stream={o['stream']}: {o['verdict']} {o['detail']}")
    if log["missing"] or log["duplicated"] or log["not_cancelled"]:
        print(f"  log: missing {log['missing']}, duplicated {log['duplicated']}, "
              f"left but not cancelled {log['not_cancelled']}")
    if hostile is not None:
        print_hostile(summary, hostile, homes)


def print_hostile(summary: dict, h: dict, homes: list[dict]) -> None:
    """The hostile phase's table, its unexpected cases, and the broken homes."""
    w = h["workers"]
    total = summary["requests"] + h["warm_requests"] + h["hostile_requests"]
    growth = (f"{w['growth_mb']:+.1f} MB ({w['growth_pct']:+.1f}%)" if w["growth_pct"] is not None
              else "-")
    print()
    print("| requests | hostile requests | unexpected errors | hangs | log rows / requests "
          "| worker memory before / after | growth |")
    print("|---|---|---|---|---|---|---|")
    print(f"| {total} | {h['hostile_requests']} | {h['unexpected']} | {h['hangs']} | "
          f"{h['log_rows']} / {h['warm_requests'] + h['hostile_requests']} | {w['before_mb']:.0f} / "
          f"{w['after_mb']:.0f} MB ({len(w['pids_before'])} workers) | {growth} |")
    if w["pids_before"] != w["pids_after"] or w["killed_by_guard"]:
        print(f"  workers changed: {w['pids_before']} -> {w['pids_after']}; killed by the memory "
              f"guard: {w['killed_by_guard']}")
    for c in h["cases"]:
        if c["verdict"] != "expected":
            print(f"  unexpected: {c['name']}: {c['verdict']} {c['detail']}")
    if h["unlogged"]["missing"]:
        print(f"  {h['unlogged']['missing']} requests have no log row, among: "
              f"{', '.join(h['unlogged']['among'])}")
    if not homes:
        return
    print()
    print("| broken home | command | exit | stderr lines | traceback | verdict |")
    print("|---|---|---|---|---|---|")
    for r in homes:
        if r["verdict"] == "skipped":
            print(f"| {r['home']} | {r['command']} | - | - | - | skipped: {r['detail']} |")
            continue
        extra = f" (started, answered {r['answered']})" if r.get("started") else ""
        print(f"| {r['home']} | {r['command']} | {r['exit']}{extra} | {r['stderr_lines']} | "
              f"{'yes' if r['traceback'] else 'no'} | {r['verdict']}"
              f"{': ' + r['detail'] if r['detail'] else ''} |")


if __name__ == "__main__":
    main()
