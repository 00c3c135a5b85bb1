"""The service facade on tiny experts: logging, concurrency, cancellation, errors."""

import json
import threading

import pytest
from typer.testing import CliRunner

from helpers import install_tiny_universe
from leeroo_local.backends.base import Sampling
from leeroo_local.cli import app
from leeroo_local.errors import ContextOverflow
from leeroo_local.runtime.service import Progress, Result, Service, TextEvent
from leeroo_local.settings import load_settings
from leeroo_local.store.requests import RequestLog


@pytest.fixture
def service(tiny_dir):
    install_tiny_universe(tiny_dir, n_ctx=256)
    svc = Service(load_settings(n_threads=1, ram_budget="64MB", keep_alive_s=0), client="test")
    yield svc
    svc.close()


def ask(service, expert, text="hello", n=6, **kw):
    events = list(service.chat([{"role": "user", "content": text}], expert,
                               Sampling(max_tokens=n, seed=1), **kw))
    return events[-1]


def test_every_request_is_logged_with_its_measurements(service):
    result = ask(service, "tiny-1", conversation="c1")
    assert isinstance(result, Result)
    row = service.log.recent(1)[0]
    assert row["expert"] == "tiny-1" and row["client"] == "test" and row["conversation"] == "c1"
    assert row["response"] == result.answer and row["completion_tokens"] == result.tokens["completion"]
    assert row["energy_method"] in ("measured", "estimated") and row["error"] is None


def test_concurrent_requests_lose_no_log_row(service):
    errors = []

    def worker(i):
        try:
            ask(service, f"tiny-{i % 3 + 1}", text=f"q{i}", n=4)
        except Exception as exc:  # pragma: no cover - the assertion below reports it
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    prompts = {r["prompt"] for r in service.log.recent(50)}
    assert {f"q{i}" for i in range(12)} <= prompts


def test_closing_the_stream_cancels_and_keeps_the_worker_in_sync(service):
    stream = service.chat([{"role": "user", "content": "x"}], "tiny-1", Sampling(max_tokens=200, seed=1))
    first = next(e for e in stream if not isinstance(e, Progress))
    assert isinstance(first, TextEvent)
    stream.close()
    assert service.log.recent(1)[0]["error"].startswith("cancelled")
    result = ask(service, "tiny-1", text="again", n=5)  # the same worker answers the next request
    assert result.tokens["completion"] >= 1 and result.timings.load_s == 0


def test_errors_are_logged_and_raised(service):
    with pytest.raises(ContextOverflow):
        ask(service, "tiny-2", text="y" * 600)
    row = service.log.recent(1)[0]
    assert row["error"].startswith("ContextOverflow") and row["expert"] == "tiny-2"


def test_logs_command_shows_rows(service):
    ask(service, "tiny-3", text="for the log")
    service.close()
    result = CliRunner().invoke(app, ["logs", "-n", "5", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert rows[0]["prompt"] == "for the log" and rows[0]["expert"] == "tiny-3"
    table = CliRunner().invoke(app, ["logs"])
    assert table.exit_code == 0 and "tiny-3" in table.output


def test_log_reads_conversations(tmp_path):
    log = RequestLog(tmp_path / "x.db")
    from leeroo_local.runtime.service import Route

    for i, conv in enumerate(["a", "a", "b"]):
        log.record(kind="chat", prompt=f"p{i}", route=Route(expert="e", quant="q"), conversation=conv)
    convs = {c["conversation"]: c["turns"] for c in log.conversations()}
    assert convs == {"a": 2, "b": 1}
    assert [r["prompt"] for r in log.recent(10, conversation="a")] == ["p1", "p0"]


def test_status_reports_each_member_and_what_is_loaded(service):
    before = {row["expert"]: row for row in service.status()}
    assert set(before) == {"tiny-1", "tiny-2", "tiny-3"}
    assert all(not r["loaded"] and r["memory_bytes"] > 0 and r["quant"] == "F32" for r in before.values())
    service_keep = Service(load_settings(n_threads=1, ram_budget="64MB", keep_alive_s=60), client="test")
    try:
        ask(service_keep, "tiny-2")
        after = {row["expert"]: row for row in service_keep.status()}
        assert after["tiny-2"]["loaded"] and 0 < after["tiny-2"]["keep_alive_s"] <= 60
        assert not after["tiny-1"]["loaded"]
    finally:
        service_keep.close()


def test_progress_says_routed_then_loading_only_when_cold(tiny_dir):
    install_tiny_universe(tiny_dir, n_ctx=256)
    svc = Service(load_settings(n_threads=1, ram_budget="64MB", keep_alive_s=60), client="test")
    try:
        def stages():
            events = list(svc.chat([{"role": "user", "content": "hi"}], "tiny-1", Sampling(max_tokens=3, seed=1)))
            progress = [e for e in events if isinstance(e, Progress)]
            assert all(p.route.expert == "tiny-1" for p in progress)
            assert events.index(progress[-1]) < min(i for i, e in enumerate(events) if not isinstance(e, Progress))
            return [p.stage for p in progress], progress[-1].load_s, events[-1]

        cold, cold_load, result = stages()
        assert cold == ["routed", "loading", "generating"] and cold_load > 0
        assert cold_load == result.timings.load_s
        warm, warm_load, _ = stages()
        assert warm == ["routed", "generating"] and warm_load == 0
    finally:
        svc.close()


def test_a_vram_budget_without_gpu_offload_keeps_everything_in_ram(tiny_dir):
    install_tiny_universe(tiny_dir, n_ctx=256)
    svc = Service(load_settings(n_threads=1, ram_budget="64MB", vram_budget="1GB", keep_alive_s=0))
    try:
        result = ask(svc, "tiny-1")
        plan = svc.load_plan(svc.local_file("tiny-1", "F32"))
        if not svc.pool().gpu_offload():  # this machine's CPU build
            assert plan.n_gpu_layers == 0 and plan.cpu_bytes == plan.total_bytes
            assert "nvml" not in result.energy.source
        assert svc.pool().vram_budget == 10**9  # GB is decimal, as the fit reads it
    finally:
        svc.close()
