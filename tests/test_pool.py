"""The expert pool with real llama.cpp workers on tiny GGUF experts: memory, order, faults."""

import os
import signal
import threading
import time

import psutil
import pytest

from leeroo_local.backends.base import Final, Request, Sampling
from leeroo_local.errors import BudgetTooSmall, Cancelled, CorruptModel, ExpertCrashed
from leeroo_local.runtime.pool import Pool

NEED = 10 * 2**20  # what the tests say each tiny expert needs
SAMPLING = Sampling(max_tokens=8, seed=1)


def generate(pool, key, path, need=NEED, sampling=SAMPLING):
    with pool.acquire(key, path, need) as (worker, load_s):
        events = list(worker.stream(Request(sampling, prompt="hello")))
    return events, load_s


@pytest.fixture
def pool():
    p = Pool(budget_bytes=2 * NEED, n_ctx=256, n_threads=1, keep_alive_s=0, spare=False)
    yield p
    p.close()


def test_load_on_demand_then_warm(pool, tiny_dir):
    events, cold = generate(pool, "a", tiny_dir / "tiny-1.gguf")
    assert isinstance(events[-1], Final) and events[-1].completion_tokens >= 1
    _, warm = generate(pool, "a", tiny_dir / "tiny-1.gguf")
    assert cold > 0 and warm == 0
    assert [s["expert"] for s in pool.status() if s["loaded"]] == ["a"]


def test_lru_expert_is_evicted_when_memory_is_needed(pool, tiny_dir):
    generate(pool, "a", tiny_dir / "tiny-1.gguf")
    generate(pool, "b", tiny_dir / "tiny-2.gguf")
    generate(pool, "a", tiny_dir / "tiny-1.gguf")  # a is now the most recently used
    old_b = next(s["pid"] for s in pool.status() if s["expert"] == "b")
    generate(pool, "c", tiny_dir / "tiny-3.gguf")
    loaded = {s["expert"] for s in pool.status() if s["loaded"]}
    assert loaded == {"a", "c"}
    assert not psutil.pid_exists(old_b) or psutil.Process(old_b).status() == psutil.STATUS_ZOMBIE
    assert pool.used() <= pool.budget


def test_an_expert_larger_than_the_budget_is_refused(pool, tiny_dir):
    with pytest.raises(BudgetTooSmall, match="more than the pool's whole budget"):
        generate(pool, "huge", tiny_dir / "tiny-1.gguf", need=3 * NEED)


def test_requests_for_one_expert_are_served_in_arrival_order(tiny_dir):
    pool = Pool(budget_bytes=NEED, n_ctx=256, n_threads=1, keep_alive_s=0, spare=False)
    order, threads = [], []

    def request(i):
        with pool.acquire("a", tiny_dir / "tiny-1.gguf", NEED) as (worker, _):
            order.append(i)
            list(worker.stream(Request(SAMPLING, prompt="hi")))

    queued = lambda: next(s["queued"] for s in pool.status() if s["expert"] == "a")  # noqa: E731
    try:
        with pool.acquire("a", tiny_dir / "tiny-1.gguf", NEED):  # hold the expert while others queue
            for i in range(5):
                t = threading.Thread(target=request, args=(i,))
                t.start()
                threads.append(t)
                _until(lambda: queued() == i + 1)  # i holds its place before i + 1 asks
        for t in threads:
            t.join(30)
    finally:
        pool.close()
    assert order == [0, 1, 2, 3, 4]


def test_another_expert_waits_for_memory_instead_of_failing(tiny_dir):
    pool = Pool(budget_bytes=NEED, n_ctx=256, n_threads=1, keep_alive_s=0, spare=False)
    done = []
    try:
        with pool.acquire("a", tiny_dir / "tiny-1.gguf", NEED):
            t = threading.Thread(target=lambda: done.append(generate(pool, "b", tiny_dir / "tiny-2.gguf")))
            t.start()
            # b is admitted to its own slot and waits there for memory, not loaded, not failed
            _until(lambda: any(s["expert"] == "b" and s["busy"] for s in pool.status()))
            assert not done and not any(s["expert"] == "b" and s["loaded"] for s in pool.status())
            assert pool.used() == NEED  # a alone holds the budget
        t.join(30)
        assert done and isinstance(done[0][0][-1], Final)
        assert {s["expert"] for s in pool.status() if s["loaded"]} == {"b"}
    finally:
        pool.close()


def test_killed_worker_fails_its_request_and_the_expert_restarts(pool, tiny_dir):
    generate(pool, "a", tiny_dir / "tiny-1.gguf")
    generate(pool, "b", tiny_dir / "tiny-2.gguf")
    long = Sampling(max_tokens=200, seed=1)
    with pytest.raises(ExpertCrashed, match="died"):
        with pool.acquire("a", tiny_dir / "tiny-1.gguf", NEED) as (worker, _):
            os.kill(worker.pid, signal.SIGKILL)  # the worker dies as the request arrives
            worker.process.wait(5)
            list(worker.stream(Request(long, prompt="x")))
    events, _ = generate(pool, "b", tiny_dir / "tiny-2.gguf")  # other experts keep serving
    assert isinstance(events[-1], Final)
    events, load_s = generate(pool, "a", tiny_dir / "tiny-1.gguf")  # restarted on demand
    assert isinstance(events[-1], Final) and load_s > 0


def test_corrupt_gguf_fails_the_load_and_leaves_the_pool_working(pool, tiny_dir, tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes((tiny_dir / "tiny-1.gguf").read_bytes()[:3000])
    with pytest.raises(CorruptModel):
        generate(pool, "bad", bad)
    assert pool.used() == 0
    events, _ = generate(pool, "a", tiny_dir / "tiny-1.gguf")
    assert isinstance(events[-1], Final)


def test_cancel_stops_a_stream_early(pool, tiny_dir):
    cancel = threading.Event()
    cancel.set()  # e.g. the client disconnected while the request was on its way
    long = Sampling(max_tokens=240, seed=1)
    with pool.acquire("a", tiny_dir / "tiny-1.gguf", NEED) as (worker, _):
        events = list(worker.stream(Request(long, prompt="x"), cancel))
    assert events[-1].finish_reason == "cancelled"
    assert len(events) < 20 and events[-1].completion_tokens == len(events) - 1
    events, _ = generate(pool, "a", tiny_dir / "tiny-1.gguf")  # the worker is still usable
    assert events[-1].finish_reason in ("length", "stop")


def _until(predicate, timeout=30.0):
    """Wait for a state change of another thread (polling, never a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "the state never came"
        time.sleep(0.01)


def _acquire_in_thread(pool, key, path, need, cancel, outcome):
    def run():
        try:
            with pool.acquire(key, path, need, cancel=cancel):
                outcome.append("served")
        except Cancelled:
            outcome.append("cancelled")

    t = threading.Thread(target=run)
    t.start()
    return t


def test_a_cancelled_request_leaves_the_queue_while_the_expert_is_still_busy(tiny_dir):
    pool = Pool(budget_bytes=NEED, n_ctx=256, n_threads=1, keep_alive_s=0, spare=False)
    cancel, outcome = threading.Event(), []
    queued = lambda: next(s["queued"] for s in pool.status() if s["expert"] == "a")  # noqa: E731
    try:
        with pool.acquire("a", tiny_dir / "tiny-1.gguf", NEED):
            t = _acquire_in_thread(pool, "a", tiny_dir / "tiny-1.gguf", NEED, cancel, outcome)
            _until(lambda: queued() == 1)
            cancel.set()
            t.join(10)
            assert outcome == ["cancelled"] and queued() == 0  # gone before its turn came
        events, load_s = generate(pool, "a", tiny_dir / "tiny-1.gguf")
        assert isinstance(events[-1], Final) and load_s == 0
    finally:
        pool.close()


def test_a_request_cancelled_while_waiting_for_memory_gives_back_what_it_would_evict(tiny_dir):
    pool = Pool(budget_bytes=2 * NEED, n_ctx=256, n_threads=1, keep_alive_s=0, spare=False)
    cancel, outcome = threading.Event(), []
    try:
        generate(pool, "a", tiny_dir / "tiny-1.gguf")  # loaded and idle: an eviction candidate
        pid_a = next(s["pid"] for s in pool.status() if s["expert"] == "a")
        with pool.acquire("c", tiny_dir / "tiny-3.gguf", NEED):  # busy: cannot be evicted
            t = _acquire_in_thread(pool, "b", tiny_dir / "tiny-2.gguf", 2 * NEED, cancel, outcome)
            _until(lambda: any(s["expert"] == "b" and s["busy"] for s in pool.status()))
            cancel.set()
            t.join(10)
        assert outcome == ["cancelled"]
        status = {s["expert"]: s for s in pool.status()}
        assert status["a"]["loaded"] and status["a"]["pid"] == pid_a and not status["b"]["loaded"]
        assert psutil.pid_exists(pid_a) and pool.used() <= pool.budget
        events, load_s = generate(pool, "a", tiny_dir / "tiny-1.gguf")
        assert isinstance(events[-1], Final) and load_s == 0
    finally:
        pool.close()


def test_keep_alive_unloads_idle_experts(tiny_dir):
    pool = Pool(budget_bytes=2 * NEED, n_ctx=256, n_threads=1, keep_alive_s=0.2, spare=False)
    try:
        generate(pool, "a", tiny_dir / "tiny-1.gguf")
        _until(lambda: not any(s["loaded"] for s in pool.status()), timeout=10)
    finally:
        pool.close()


def test_spare_worker_is_ready_before_the_first_load(tiny_dir):
    pool = Pool(budget_bytes=2 * NEED, n_ctx=256, n_threads=1, keep_alive_s=0, spare=True)
    try:
        spare_pid = pool.ready_spare()
        generate(pool, "a", tiny_dir / "tiny-1.gguf")
        assert next(s["pid"] for s in pool.status() if s["expert"] == "a") == spare_pid
    finally:
        pool.close()


def test_vram_is_a_second_budget_with_its_own_evictions(tiny_dir):
    pool = Pool(budget_bytes=4 * NEED, n_ctx=256, n_threads=1, keep_alive_s=0, spare=False,
                vram_budget_bytes=NEED)
    try:
        with pool.acquire("a", tiny_dir / "tiny-1.gguf", NEED, vram=NEED * 6 // 10):
            pass
        with pool.acquire("b", tiny_dir / "tiny-2.gguf", NEED, vram=NEED * 6 // 10):
            pass  # RAM has room for both, VRAM does not: a goes
        loaded = {s["expert"]: s for s in pool.status() if s["loaded"]}
        assert set(loaded) == {"b"} and loaded["b"]["vram_bytes"] == NEED * 6 // 10
        assert pool.used_vram() <= pool.vram_budget
        with pytest.raises(BudgetTooSmall, match="VRAM"):
            with pool.acquire("c", tiny_dir / "tiny-3.gguf", NEED, vram=2 * NEED):
                pass
    finally:
        pool.close()


def test_the_workers_report_whether_llama_cpp_can_offload(tiny_dir):
    import llama_cpp

    pool = Pool(budget_bytes=NEED, n_ctx=256, n_threads=1, keep_alive_s=0, spare=False)
    try:
        assert pool.gpu_offload() is bool(llama_cpp.llama_supports_gpu_offload())
    finally:
        pool.close()


def _acquire(pool, key, path, **given):
    with pool.acquire(key, path, NEED, **given) as (worker, _):
        list(worker.stream(Request(SAMPLING, prompt="hello")))


def test_a_pinned_expert_is_never_evicted_and_never_unloaded_when_idle(tiny_dir):
    pool = Pool(budget_bytes=2 * NEED, n_ctx=256, n_threads=1, keep_alive_s=0.2, spare=False,
                pinned=frozenset({"a"}))
    try:
        _acquire(pool, "a:F32", tiny_dir / "tiny-1.gguf")
        _acquire(pool, "b:F32", tiny_dir / "tiny-2.gguf")
        _acquire(pool, "c:F32", tiny_dir / "tiny-3.gguf")  # room is made from b, not the pinned a
        loaded = {s["expert"] for s in pool.status() if s["loaded"]}
        assert loaded == {"a:F32", "c:F32"}
        time.sleep(1.5)  # well past the keep-alive: c unloads, a stays
        rows = {s["expert"]: s for s in pool.status()}
        assert rows["a:F32"]["loaded"] and rows["a:F32"]["pinned"]
        assert rows["a:F32"]["keep_alive_s"] is None and not rows["c:F32"]["loaded"]
    finally:
        pool.close()


def test_a_requests_keep_alive_overrides_the_pools(tiny_dir):
    pool = Pool(budget_bytes=4 * NEED, n_ctx=256, n_threads=1, keep_alive_s=0, spare=False)
    try:
        _acquire(pool, "now", tiny_dir / "tiny-1.gguf", keep_alive_s=0)  # unload right after
        assert not pool.is_loaded("now")
        _acquire(pool, "soon", tiny_dir / "tiny-2.gguf", keep_alive_s=1.0)
        soon = {s["expert"]: s for s in pool.status()}["soon"]
        assert soon["loaded"] and 0 < soon["keep_alive_s"] <= 1.0
        _acquire(pool, "ever", tiny_dir / "tiny-3.gguf", keep_alive_s=-1)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and pool.is_loaded("soon"):
            time.sleep(0.1)
        assert not pool.is_loaded("soon") and pool.is_loaded("ever")
        assert {s["expert"]: s for s in pool.status()}["ever"]["keep_alive_s"] is None
    finally:
        pool.close()
