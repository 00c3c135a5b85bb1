"""Hosts for real: two `leeroo-local serve` processes on 127.0.0.1 ports, each a host with its
own home; this machine adds them (`hosts add`), trains a routing policy on topic data, and
`fit --host` places the tiny experts on this machine and the two hosts within each one's budget.
`auto` requests then reach the host that holds the routed expert (its own request log has the
rows), and when a host is killed (SIGKILL) while requests run, none that had not started
streaming is lost: they fall back, and the log has a row for every request with the fallback
recorded. /health names each host's state."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from outcome_folder import TOPICS, topic_matrix, write_folder
from typer.testing import CliRunner

from helpers import tiny_expert_toml
from leeroo_local import paths
from leeroo_local.catalog import load_user_catalog
from leeroo_local.cli import app
from leeroo_local.runtime.service import Result, Service, TextEvent
from leeroo_local.server import BackgroundServer, ServerSettings, create_app
from leeroo_local.settings import Settings
from leeroo_local.store.requests import RequestLog
from leeroo_local.universe import load_universe

ROOT = Path(__file__).resolve().parents[1]
EXPERTS = {"mathy": "tiny-1.gguf", "lawyer": "tiny-2.gguf", "generalist": "tiny-3.gguf"}
N_CTX = 256
ONE_EXPERT = "8MB"  # a tiny expert needs ~5.3 MB at 256 tokens: each machine holds one


def experts_toml(tiny_dir: Path) -> str:
    return "".join(tiny_expert_toml(e, tiny_dir, f, e) for e, f in EXPERTS.items())


def start_host(home: Path, tiny_dir: Path) -> tuple[subprocess.Popen, str]:
    """A `serve` process with its own home: the three tiny experts, all in its universe."""
    (home / "config").mkdir(parents=True)
    (home / "config" / "models.toml").write_text(experts_toml(tiny_dir))
    (home / "config" / "universe.json").write_text(json.dumps(
        {"members": [{"expert": e, "quant": "F32"} for e in EXPERTS], "n_ctx": N_CTX}))
    env = {**os.environ, "LEEROO_HOME": str(home), "LEEROO_N_THREADS": "1",
           "LEEROO_RAM_BUDGET": "256MB"}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from leeroo_local.cli import main; main()", "serve", "--port", "0",
         "--no-pull", "--log-level", "warning"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
        text=True)
    line = proc.stdout.readline()
    url = re.search(r"at (http://127\.0\.0\.1:\d+/v1)", line)
    assert url, line
    return proc, url.group(1)


@pytest.fixture
def fleet(tmp_path, tiny_dir):
    procs = {}
    try:
        for name in ("desk", "laptop"):
            procs[name] = (*start_host(tmp_path / name, tiny_dir), tmp_path / name)
        yield procs
    finally:
        for proc, _, _ in procs.values():
            if proc.poll() is None:
                proc.kill()
            proc.wait(30)


def cli(*args) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def host_rows(home: Path) -> list[dict]:
    db = sqlite3.connect(home / "leeroo.db")
    db.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in db.execute("select expert, error from requests")]
    finally:
        db.close()


def prompts_by_route(service: Service, n: int = 60) -> dict[str, list[str]]:
    """Topic prompts grouped by the member the policy routes each to."""
    out: dict[str, list[str]] = {}
    for i in range(n):
        words = list(TOPICS)[i % 3]
        text = " ".join(TOPICS[words].split()[i % 4:] + ["what", "is", "given", str(i)]) + "?"
        out.setdefault(service.route(text).expert, []).append(text)
    return out


def ask(service: Service, prompt: str) -> dict:
    """One auto request: its Result, or its error and whether text had come before it."""
    streamed = False
    try:
        for event in service.chat([{"role": "user", "content": prompt}], "auto",
                                  service.sampling(max_tokens=24, temperature=0.0)):
            if isinstance(event, TextEvent):
                streamed = True
            if isinstance(event, Result):
                return {"result": event}
    except Exception as exc:  # noqa: BLE001 - what the request met is the finding
        return {"error": exc, "streamed": streamed}
    return {"error": RuntimeError("no result"), "streamed": streamed}


def test_fit_across_hosts_routes_to_them_and_survives_a_killed_host(fleet, tmp_path, tiny_dir):
    (paths.config_dir() / "models.toml").write_text(experts_toml(tiny_dir))
    for name, (_, url, _) in fleet.items():
        added = json.loads(cli("hosts", "add", name, url, "--json"))
        assert sorted(added["experts"]) == sorted(f"{name}.{e}" for e in EXPERTS)
    scores, columns, texts, _ = topic_matrix(n=240, seed=5)
    data = write_folder(tmp_path / "topics", scores, columns, texts=texts)
    cli("policy", "train", "--data", str(data), "--out", str(paths.policies_dir() / "topics"))

    placed = json.loads(cli("fit", "--data", str(data), "--ctx", str(N_CTX), "--host",
                            f"local={ONE_EXPERT}", "--host", f"desk={ONE_EXPERT}", "--host",
                            f"laptop={ONE_EXPERT}", "--save", "--json"))
    hosts = {h["name"]: h for h in placed["hosts"]}
    for h in hosts.values():
        assert h["used_bytes"] <= h["capacity_bytes"] and len(h["members"]) <= 1
    where = {e["id"]: e["host"] for e in placed["experts"]}
    assert len(where) >= 2 and set(where.values()) - {"local"}, where

    universe = load_universe()
    assert {(m.expert, m.host) for m in universe.members} == {
        (e if h == "local" else f"{h}.{e}", None if h == "local" else h) for e, h in where.items()}
    service = Service(Settings(n_threads=1, keep_alive_s=600), catalog=load_user_catalog(),
                      universe=universe, log=RequestLog(paths.db_path()))
    try:
        routes = prompts_by_route(service)
        remote = [m.expert for m in universe.members if m.host]
        assert set(routes) & set(remote), routes  # the policy sends some prompts to a host

        # Before any failure: each remote member's prompts are answered by its host.
        for member in set(routes) & set(remote):
            host, expert = member.split(".", 1)
            before = sum(r["expert"] == expert for r in host_rows(fleet[host][2]))
            for prompt in routes[member][:3]:
                got = ask(service, prompt)["result"]
                assert got.expert == member and not got.route.failed
            after = sum(r["expert"] == expert for r in host_rows(fleet[host][2]))
            assert after - before == len(routes[member][:3])
        states = {s["name"]: s for s in service.hosts()}
        assert {s["state"] for s in states.values()} == {"up"}
        for name in fleet:
            assert states[name]["members"] == [m.expert for m in universe.members
                                               if m.host == name]

        # Kill the host of one routed member while requests for it run.
        victim_member = next(m for m in remote if m in routes)
        victim = victim_member.split(".", 1)[0]
        prompts = (routes[victim_member] * 40)[:40]
        first_row = max((r["id"] for r in service.log.recent(1)), default=0)
        answered = threading.Semaphore(0)
        killed = threading.Event()

        def one(prompt):
            got = ask(service, prompt)
            answered.release()
            return got

        def kill_after(n):
            for _ in range(n):
                answered.acquire()
            fleet[victim][0].send_signal(signal.SIGKILL)
            fleet[victim][0].wait(30)
            killed.set()

        killer = threading.Thread(target=kill_after, args=(8,))
        killer.start()
        with ThreadPoolExecutor(4) as pool:
            outcomes = list(pool.map(one, prompts))
        killer.join(60)
        assert killed.is_set()

        lost = [o for o in outcomes if "error" in o and not o["streamed"]]
        assert lost == [], [repr(o["error"]) for o in lost]
        fell_back = [o["result"] for o in outcomes if "result" in o and o["result"].route.failed]
        assert fell_back, "no request met the killed host"
        for r in fell_back:
            assert r.route.failed[0].expert == victim_member and r.expert != victim_member
            assert r.route.failed[0].error.startswith("RemoteError")

        deadline = time.monotonic() + 30
        while len(rows := [r for r in service.log.recent(200) if r["id"] > first_row]) < len(prompts):
            assert time.monotonic() < deadline, f"{len(rows)} rows for {len(prompts)} requests"
            time.sleep(0.05)
        assert len(rows) == len(prompts)
        recorded = [r for r in rows if r["fallback"]]
        assert len(recorded) >= len(fell_back)
        assert all(json.loads(r["fallback"])[0]["expert"] == victim_member for r in recorded)

        # /health names the host that failed as backing off, the other as up.
        settings = ServerSettings(port=0)
        server = BackgroundServer(create_app(service, settings), settings).start()
        try:
            health = httpx.get(server.url + "/health", timeout=30).json()
        finally:
            server.stop()
        states = {h["name"]: h for h in health["hosts"]}
        assert states[victim]["state"] == "backing-off" and states[victim]["backoff_s"] > 0
        assert "RemoteError" in states[victim]["detail"]
        other = next(n for n in fleet if n != victim)
        assert states[other]["state"] == "up" and states[other]["last_check"] <= time.time()
    finally:
        service.close()
