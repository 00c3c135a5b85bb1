"""The hostile-input phase of bench/faults.py: what an attacker or an unlucky user sends.

Against the running server: numeric fields far out of range (the penalty window llama.cpp
allocates 4 bytes a token for, values past 2^32, NaN and Infinity as raw JSON literals), huge
lists and strings, text UTF-8 cannot encode (lone surrogates), alone and with a bad field or an
unknown model. Each must end in a 4xx that names the field (413 for a body over the limit), or a
200 where the server caps a value and says so in `leeroo.notes`; never a 5xx, a reset connection
or a hang. The workers' resident memory is read before and after (psutil: they are children of
`serve`), and a guard kills a worker that passes --rss-guard-mb, so a value the server lets
through cannot take the machine down with it.

Then broken homes, each a fresh copy of the bench's home: a garbage database, a bad
config.toml, a garbage universe.json, a read-only and a full home (tmpfs mounts; skipped, saying
why, where mounting is refused). `serve`, `run` and `logs` on each must end with exit 2 and one
line, no traceback; a damaged database is moved aside by the preflight, and `serve` then starts
and answers.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

SURROGATE = "[#h] hi \\ud800"  # a JSON escape of a lone surrogate, as text inside a raw JSON body


@dataclass
class Case:
    """One hostile request and what may come back."""

    name: str
    path: str
    body: bytes
    field: str | None  # what a 4xx must name (in `param` or the message); None: no field
    allowed: tuple[int, ...] = (400, 422)
    ok_200: str = "no"  # no | note (a cap the response must note) | yes (a legal value)
    tag: str = ""  # [#hN] at the start of its text, which its log row's prompt starts with
    status: int | None = None
    code: str | None = None
    param: str | None = None
    message: str = ""
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    verdict: str = ""  # expected | unexpected | hang
    detail: str = ""


def _raw(template: dict, **replace: str) -> bytes:
    """JSON of `template`, with the values of `replace` spliced in as raw text (NaN, a JSON
    escape of a lone surrogate, ...), which json.dumps would not write."""
    marked = {k: f"@@{k}@@" if k in replace else v for k, v in template.items()}
    text = json.dumps(marked)
    for k, raw in replace.items():
        text = text.replace(f'"@@{k}@@"', raw)
    return text.encode()


def cases(experts: list[str]) -> list[Case]:
    """Every hostile request, on both endpoints where the field exists on both."""
    out: list[Case] = []
    k = 0

    def add(name: str, field_: str | None, chat_extra: dict | None = None,
            complete_extra: dict | None = None, raw: dict[str, str] | None = None, **kw) -> None:
        nonlocal k
        for path, extra in (("/v1/chat/completions", chat_extra), ("/v1/completions", complete_extra)):
            if extra is None:
                continue
            k += 1
            model = experts[k % len(experts)]
            base = ({"model": model, "max_tokens": 4,
                     "messages": [{"role": "user", "content": "[#h] Say hi."}]}
                    if "chat" in path else {"model": model, "max_tokens": 4,
                                            "prompt": "[#h] Say hi."})
            body = _raw({**base, **extra}, **(raw or {})).replace(b"[#h]", f"[#h{k}]".encode(), 1)
            out.append(Case(f"{name} ({'chat' if 'chat' in path else 'completions'})", path,
                            body, field_, tag=f"[#h{k}]", **kw))

    def both(name: str, field_: str | None, extra: dict, raw: dict[str, str] | None = None, **kw):
        add(name, field_, extra, extra, raw, **kw)

    # numbers: llama.cpp allocates the penalty window, wraps values past 32 bits
    for _ in range(3):  # the issue's three requests
        both("repeat_last_n 250000000", "repeat_last_n", {"repeat_last_n": 250_000_000})
    both("repeat_last_n 2e9", "repeat_last_n", {"repeat_last_n": 2_000_000_000})
    both("repeat_last_n 2**40", "repeat_last_n", {"repeat_last_n": 2**40})
    both("repeat_last_n 100000 (over the context)", "repeat_last_n", {"repeat_last_n": 100_000},
         ok_200="note")
    both("repeat_last_n -1", "repeat_last_n", {"repeat_last_n": -1}, ok_200="yes")
    both("top_k 10**12", "top_k", {"top_k": 10**12})
    both("max_tokens 10**12", "max_tokens", {"max_tokens": 10**12}, ok_200="note")
    add("max_completion_tokens 10**12", "max_completion_tokens",
        {"max_completion_tokens": 10**12}, None, ok_200="note")
    both("seed 2**70", "seed", {"seed": 2**70})
    both("seed -1", "seed", {"seed": -1}, ok_200="yes")
    both("n 10**9", "n", {"n": 10**9})
    add("best_of 10**9", "best_of", None, {"best_of": 10**9})
    both("temperature 1e308", "temperature", {"temperature": 1e308})
    both("temperature NaN", "temperature", {"temperature": 0}, raw={"temperature": "NaN"})
    both("top_p Infinity", "top_p", {"top_p": 0}, raw={"top_p": "Infinity"})
    both("frequency_penalty -Infinity", "frequency_penalty", {"frequency_penalty": 0},
         raw={"frequency_penalty": "-Infinity"})
    both("temperature -1", "temperature", {"temperature": -1})
    both("max_tokens -5", "max_tokens", {"max_tokens": -5})
    both("top_k -1", "top_k", {"top_k": -1})
    both("n -1", "n", {"n": -1})
    # sizes
    both("stop: 10**5 strings", "stop", {"stop": ["x"] * 10**5})
    both("stop: one 1 MB string", "stop", {"stop": "y" * 2**20})
    add("messages: 10**5 tiny messages", "messages",
        {"messages": [{"role": "user", "content": "a"}] * (10**5 - 1)
         + [{"role": "user", "content": "[#h] a"}]}, None)
    add("prompt: a list of 10**5 strings", "prompt", None, {"prompt": ["[#h] a"] + ["a"] * (10**5 - 1)})
    big = "[#h] " + "word " * 600_000  # 3 MB: under the 4 MB body limit, over any context
    add("text: 3 MB", None, {"messages": [{"role": "user", "content": big}]}, {"prompt": big},
        allowed=(400, 413, 422))
    huge = "z" * 5_000_000
    add("body: 5 MB (over the limit)", None, {"messages": [{"role": "user", "content": huge}]},
        {"prompt": huge}, allowed=(413,))
    # text UTF-8 cannot carry
    add("lone surrogate in a message", "messages", {"messages": "@"}, None,
        raw={"messages": f'[{{"role": "user", "content": "{SURROGATE}"}}]'})
    add("lone surrogate in a content part", "messages", {"messages": "@"}, None,
        raw={"messages": f'[{{"role": "user", "content": [{{"type": "text", "text": "{SURROGATE}"}}]}}]'})
    add("lone surrogate in the prompt", "prompt", None, {"prompt": "@"},
        raw={"prompt": f'"{SURROGATE}"'})
    both("lone surrogate in a stop string", "stop", {"stop": "@"}, raw={"stop": f'["{SURROGATE}"]'})
    add("lone surrogate + temperature 5", None, {"messages": "@", "temperature": 5}, None,
        raw={"messages": f'[{{"role": "user", "content": "{SURROGATE}"}}]'})
    add("lone surrogate + unknown model", None, {"messages": "@", "model": "no-such-expert"},
        None, raw={"messages": f'[{{"role": "user", "content": "{SURROGATE}"}}]'},
        allowed=(400, 404))
    add("lone surrogate in the prompt + unknown model", None, None,
        {"prompt": "@", "model": "no-such-expert"}, raw={"prompt": f'"{SURROGATE}"'},
        allowed=(400, 404))
    return out


def send(url: str, case: Case, deadline_s: float) -> Case:
    """POST the case's body and judge what came back."""
    started = time.monotonic()
    try:
        with httpx.Client(timeout=httpx.Timeout(deadline_s, connect=10)) as client:
            resp = client.post(url + case.path, content=case.body,
                               headers={"content-type": "application/json"})
        case.status = resp.status_code
        try:
            data = resp.json()
        except ValueError:
            data = {}
        error = data.get("error") or {}
        case.code, case.param = error.get("code"), error.get("param")
        case.message = str(error.get("message") or "")[:300]
        case.notes = list((data.get("leeroo") or {}).get("notes") or [])
        _judge(case)
    except httpx.TimeoutException as exc:
        case.verdict, case.detail = "hang", f"no answer in {deadline_s:g} s ({type(exc).__name__})"
    except httpx.HTTPError as exc:
        case.verdict, case.detail = "unexpected", f"{type(exc).__name__}: {exc}"
    case.seconds = time.monotonic() - started
    return case


def _judge(case: Case) -> None:
    status = case.status or 0
    if status == 200:
        if case.ok_200 == "yes" or (case.ok_200 == "note" and case.notes):
            case.verdict = "expected"
        else:
            case.verdict = "unexpected"
            case.detail = ("200 without a note saying what was capped" if case.ok_200 == "note"
                           else "200: the hostile value was accepted")
        return
    if status not in case.allowed or not case.message:
        case.verdict = "unexpected"
        case.detail = f"{status} {case.code}: {case.message[:160]}"
        return
    named = case.field is None or status == 413 or case.field in (case.param or "") \
        or case.field in case.message
    case.verdict = "expected" if named else "unexpected"
    if not named:
        case.detail = f"{status} does not name {case.field}: {case.message[:160]}"


# -- the workers' memory ---------------------------------------------------------------------

def loaded_workers(server_pid: int) -> dict[int, str]:
    """pid -> expert id of each worker of `serve` with a model mapped (llama.cpp mmaps the GGUF),
    not multiprocessing's helpers."""
    import psutil

    out = {}
    try:
        children = psutil.Process(server_pid).children()
    except psutil.Error:
        return out
    for child in children:
        try:
            maps = Path(f"/proc/{child.pid}/maps").read_text()
        except OSError:
            continue
        files = set(re.findall(r"(/\S+\.gguf)$", maps, re.M))
        if files:
            name = Path(sorted(files)[0]).name
            out[child.pid] = "gemma-3-270m-q4_0" if "q4_0" in name else "gemma-3-270m"
    return out


def worker_rss(server_pid: int) -> dict[int, int]:
    """pid -> resident bytes of each loaded worker of `serve`."""
    import psutil

    out = {}
    for pid in loaded_workers(server_pid):
        try:
            out[pid] = psutil.Process(pid).memory_info().rss
        except psutil.Error:
            continue
    return out


class RssGuard(threading.Thread):
    """Kills a worker whose resident memory passes `limit` bytes (and says so): a bound the server
    lacks must show as a finding, not as a machine out of memory."""

    def __init__(self, server_pid: int, limit: int):
        super().__init__(daemon=True)
        self.server_pid, self.limit = server_pid, limit
        self.peak: dict[int, int] = {}
        self.killed: list[dict] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.05):
            for pid, rss in worker_rss(self.server_pid).items():
                self.peak[pid] = max(self.peak.get(pid, 0), rss)
                if rss > self.limit:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        continue
                    self.killed.append({"pid": pid, "rss_mb": rss / 2**20})


def warm(url: str, experts: list[str], deadline_s: float) -> int:
    """One small request per expert, so each worker is loaded before memory is read."""
    sent = 0
    with httpx.Client(timeout=deadline_s) as client:
        for e in experts:
            client.post(url + "/v1/completions",
                        json={"model": e, "prompt": "[#warm] The sky is", "max_tokens": 2})
            sent += 1
    return sent


def max_row_id(db: Path) -> int:
    con = sqlite3.connect(db, timeout=30)
    try:
        return con.execute("select coalesce(max(id), 0) from requests").fetchone()[0]
    finally:
        con.close()


def rows_after(db: Path, after_id: int, want: int, wait_s: float = 15.0) -> int:
    """Rows with id > after_id, waiting a little for rows still being written."""
    deadline = time.monotonic() + wait_s
    while True:
        con = sqlite3.connect(db, timeout=30)
        try:
            n = con.execute("select count(*) from requests where id > ?", (after_id,)).fetchone()[0]
        finally:
            con.close()
        if n >= want or time.monotonic() > deadline:
            return n
        time.sleep(0.25)


def hostile_phase(url: str, server_pid: int, db: Path, experts: list[str], deadline_s: float,
                  guard_mb: float) -> dict:
    """Send every case, one at a time; memory before and after; one log row per request."""
    first_id = max_row_id(db)
    sent = warm(url, experts, deadline_s)
    time.sleep(0.5)
    before = worker_rss(server_pid)
    guard = RssGuard(server_pid, int(guard_mb * 2**20))
    guard.start()
    done = []
    started = time.monotonic()
    try:
        for case in cases(experts):
            done.append(send(url, case, deadline_s))
    finally:
        guard.stop.set()
        guard.join(5)
    sent_hostile = len(done)
    time.sleep(0.5)
    after = worker_rss(server_pid)
    rows = rows_after(db, first_id, sent + sent_hostile)
    missing = _unlogged(db, first_id, done)
    same = sorted(set(before) & set(after))
    mb = lambda pids, m: sum(m[p] for p in pids) / 2**20  # noqa: E731
    before_mb, after_mb = mb(same, before), mb(same, after)
    count = lambda v: sum(1 for c in done if c.verdict == v)  # noqa: E731
    return {
        "warm_requests": sent, "hostile_requests": sent_hostile, "log_rows": rows,
        "first_row_id": first_id, "unlogged": missing,
        "expected": count("expected"), "unexpected": count("unexpected"), "hangs": count("hang"),
        "seconds": time.monotonic() - started,
        "workers": {"pids_before": sorted(before), "pids_after": sorted(after),
                    "before_mb": before_mb, "after_mb": after_mb,
                    "growth_mb": after_mb - before_mb,
                    "growth_pct": 100 * (after_mb - before_mb) / before_mb if before_mb else None,
                    "peak_mb": {str(p): v / 2**20 for p, v in guard.peak.items()},
                    "killed_by_guard": guard.killed},
        "cases": [_public(c) for c in done],
    }


def _unlogged(db: Path, after_id: int, done: list[Case]) -> dict:
    """How many cases have no log row. A row is matched by the tag in its prompt; the server
    logs no prompt for some refusals (a body over the limit is never read, a list prompt), so
    rows without a tag are set against the cases not matched: only a shortfall is missing."""
    con = sqlite3.connect(db, timeout=30)
    try:
        rows = con.execute("select prompt from requests where id > ?", (after_id,)).fetchall()
    finally:
        con.close()
    tags: set[str] = set()
    untagged = 0
    for (prompt,) in rows:
        found = re.search(r"\[#h\d+\]", prompt or "")
        if found:
            tags.add(found.group(0))
        elif not (prompt or "").startswith("[#warm]"):
            untagged += 1
    unmatched = [c.name for c in done if c.tag not in tags]
    return {"missing": max(0, len(unmatched) - untagged), "among": unmatched}


def _public(c: Case) -> dict:
    d = asdict(c)
    d.pop("body")
    d["body_bytes"] = len(c.body)
    return d


# -- broken homes ----------------------------------------------------------------------------

@dataclass
class Mounts:
    """tmpfs mounts made for the broken homes, unmounted at the end."""

    made: list[Path] = field(default_factory=list)
    refused: str | None = None

    def tmpfs(self, where: Path, size: int) -> Path | None:
        if self.refused:
            return None
        if os.geteuid() != 0:
            self.refused = "not root: mounting a tmpfs needs root"
            return None
        where.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            self.refused = f"mount refused: {done.stderr.strip()}"
            return None
        self.made.append(where)
        return where

    def read_only(self, where: Path) -> None:
        subprocess.run(["mount", "-o", "remount,ro", str(where)], check=True)

    def close(self) -> None:
        for where in reversed(self.made):
            subprocess.run(["umount", "-l", str(where)], check=False)
        self.made.clear()


def _copy_home(src: Path, dst: Path) -> Path:
    """The bench's home (config, database, the models link), without the server's stderr file."""
    shutil.copytree(src, dst, symlinks=True, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("serve.err", "*.damaged-*"))
    return dst


def _size_of(folder: Path) -> int:
    return sum(p.lstat().st_size for p in folder.rglob("*"))


def _fill(path: Path) -> None:
    """Write zeros into `path` until its disk has not one byte left."""
    with open(path, "wb", buffering=0) as fh:
        for block in (1 << 16, 1):
            try:
                while True:
                    fh.write(b"\0" * block)
            except OSError:
                pass


def make_home(kind: str, src: Path, scratch: Path, mounts: Mounts) -> tuple[Path | None, str]:
    """A fresh broken home of this kind; (None, why) when it cannot be made here."""
    if kind in ("read-only", "full"):
        disk = mounts.tmpfs(scratch / "disk", _size_of(src) + (8 << 20 if kind == "read-only" else 256 << 10))
        if disk is None:
            return None, mounts.refused or "no tmpfs"
        home = _copy_home(src, disk / "home")
        if kind == "read-only":
            mounts.read_only(disk)
        else:
            _fill(disk / "filler")
        return home, ""
    home = _copy_home(src, scratch / "home")
    if kind == "damaged database":
        for suffix in ("-wal", "-shm"):
            Path(f"{home / 'leeroo.db'}{suffix}").unlink(missing_ok=True)
        (home / "leeroo.db").write_bytes(b"this is not a database \x00\xff" * 200)
    elif kind == "bad config.toml":
        config = home / "config" / "config.toml"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text('ram_budget = "lots"\n')
    elif kind == "garbage universe.json":
        universe = home / "config" / "universe.json"
        universe.parent.mkdir(parents=True, exist_ok=True)
        universe.write_bytes(b'{"members": [garbage \x00\x01')
    return home, ""


KINDS = ["damaged database", "bad config.toml", "garbage universe.json", "read-only", "full"]


def _env(home: Path, root: Path, threads: int) -> dict:
    return {**os.environ, "LEEROO_HOME": str(home), "LEEROO_N_THREADS": str(threads),
            "PYTHONPATH": os.pathsep.join(p for p in (str(root), os.environ.get("PYTHONPATH")) if p)}


def _lines(stderr: str) -> list[str]:
    """What a user reads on stderr (progress lines like "[loading ...]" left out)."""
    return [ln for ln in stderr.splitlines() if ln.strip() and not ln.startswith("[loading")]


def _serve(home: Path, root: Path, threads: int, timeout_s: float) -> dict:
    """Start serve; if it prints its address, ask it one question, then SIGTERM it."""
    err = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen([sys.executable, "-m", "leeroo_local.cli", "serve", "--port", "0",
                             "--ctx", "512", "--log-level", "warning", "--shutdown-grace", "1"],
                            env=_env(home, root, threads), stdout=subprocess.PIPE, stderr=err,
                            text=True)
    out: dict = {"started": False, "answered": None}
    box: list[str] = []
    reader = threading.Thread(target=lambda: box.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout_s)
    m = re.search(r"at (http://[\d.]+:\d+)/v1", box[0]) if box else None
    if m:
        out["started"] = True
        try:
            resp = httpx.post(m.group(1) + "/v1/completions", timeout=timeout_s,
                              json={"model": "auto", "prompt": "The sky is", "max_tokens": 2})
            out["answered"] = resp.status_code
        except httpx.HTTPError as exc:
            out["answered"] = f"{type(exc).__name__}"
        proc.send_signal(signal.SIGTERM)
    try:
        out["exit"] = proc.wait(timeout_s if not m else 30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
        out["exit"] = "hang"
    err.seek(0)
    out["stderr"] = err.read()
    return out


def _command(args: list[str], home: Path, root: Path, threads: int, timeout_s: float) -> dict:
    try:
        done = subprocess.run([sys.executable, "-m", "leeroo_local.cli", *args],
                              env=_env(home, root, threads), capture_output=True, text=True,
                              timeout=timeout_s)
        return {"exit": done.returncode, "stderr": done.stderr}
    except subprocess.TimeoutExpired as exc:
        return {"exit": "hang", "stderr": (exc.stderr or b"").decode(errors="replace")
                if isinstance(exc.stderr, bytes) else (exc.stderr or "")}


def _judge_home(kind: str, command: str, r: dict) -> tuple[str, str]:
    lines = _lines(r["stderr"])
    traceback = "Traceback" in r["stderr"]
    r.update(stderr_lines=len(lines), traceback=traceback, first_line=lines[0][:200] if lines else "")
    if r["exit"] == "hang" or traceback:
        return "unexpected", "hang" if r["exit"] == "hang" else "traceback"
    if kind == "damaged database" and command == "serve":
        ok = r["started"] and r["answered"] == 200 and any("damaged" in ln for ln in lines)
        return ("expected" if ok else "unexpected"), "" if ok else "did not move it aside and answer"
    if kind == "damaged database" and command == "run":
        ok = r["exit"] == 0 and any("damaged" in ln for ln in lines)
        return ("expected" if ok else "unexpected"), "" if ok else f"exit {r['exit']}"
    if command == "logs" and r["exit"] == 0:  # logs needs only the database, and reads it
        return "expected", ""
    if command == "serve" and r.get("started"):
        return "unexpected", "serve started on a broken home"
    ok = r["exit"] == 2 and len(lines) == 1
    return ("expected" if ok else "unexpected"), "" if ok else f"exit {r['exit']}, {len(lines)} lines"


def broken_homes(src: Path, root: Path, threads: int, timeout_s: float) -> list[dict]:
    """serve, run and logs on each broken home (a fresh copy for each command)."""
    results = []
    mounts = Mounts()
    try:
        for kind in KINDS:
            for command in ("serve", "run", "logs"):
                with tempfile.TemporaryDirectory(prefix="leeroo-broken-") as scratch:
                    row = {"home": kind, "command": command}
                    try:  # unmounted before the folder is removed
                        home, why = make_home(kind, src, Path(scratch), mounts)
                        if home is None:
                            results.append({**row, "verdict": "skipped", "detail": why})
                            continue
                        if command == "serve":
                            r = _serve(home, root, threads, timeout_s)
                        elif command == "run":
                            r = _command(["run", "hi", "--max-tokens", "4"], home, root, threads,
                                         timeout_s)
                        else:
                            r = _command(["logs", "-n", "3"], home, root, threads, timeout_s)
                        verdict, detail = _judge_home(kind, command, r)
                        r.pop("stderr")
                        results.append({**row, **r, "verdict": verdict, "detail": detail})
                    finally:
                        mounts.close()
    finally:
        mounts.close()
    return results
