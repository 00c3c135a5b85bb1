"""`serve` when things go wrong: clients that leave, workers that die, a shutdown mid-stream,
odd credentials and limits. A live uvicorn server on 127.0.0.1 with tiny real llama.cpp experts."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import httpx
import pytest

from helpers import wait_for_row
from test_server import N_CTX, make_service
from leeroo_local.server import BackgroundServer, ServerSettings, create_app

# tiny-2 answers "hello" greedily without an end-of-text for thousands of tokens
HELLO = [{"role": "user", "content": "hello"}]


@pytest.fixture(scope="module")
def service(tmp_path_factory, tiny_dir):
    svc = make_service(tmp_path_factory.mktemp("faults"), tiny_dir)
    yield svc
    svc.close()


@pytest.fixture
def serve(service):
    """Start a server on the module's service (any settings); stopped after the test."""
    started = []

    def start(**settings) -> BackgroundServer:
        settings = ServerSettings(port=0, **settings)
        started.append(BackgroundServer(create_app(service, settings), settings).start())
        return started[-1]

    yield start
    for srv in started:
        srv.stop()


def body(conversation, **extra):
    return {"model": "tiny-2", "messages": HELLO, "temperature": 0, "max_tokens": N_CTX, **extra}


def events(lines):
    """The data events of an SSE body as they arrive, parsed ([DONE] kept as the string)."""
    for line in lines:
        if line.startswith("data: "):
            data = line[len("data: "):]
            yield data if data == "[DONE]" else json.loads(data)


def test_a_whole_answer_whose_client_leaves_is_cancelled_and_frees_the_expert(serve, service):
    srv = serve()
    headers = {"x-leeroo-conversation": "left-whole"}
    with pytest.raises(httpx.ReadTimeout):  # the client gives up long before the answer is done
        httpx.post(srv.url + "/v1/chat/completions", json=body("left-whole"), headers=headers,
                   timeout=httpx.Timeout(60, read=1.0))
    row = wait_for_row(service, "left-whole", timeout=30)
    assert row["error"] == "cancelled: the client went away"
    assert row["response"] and row["completion_tokens"] < N_CTX  # what was generated is kept
    again = httpx.post(srv.url + "/v1/chat/completions", timeout=60,
                       json={"model": "tiny-2", "messages": HELLO, "max_tokens": 2}).json()
    assert again["leeroo"]["timings"]["load_s"] == 0  # the same worker, still in sync


def test_a_stream_cut_short_logs_the_text_the_client_received(serve, service):
    srv = serve()
    headers = {"x-leeroo-conversation": "left-stream"}
    received = []
    with httpx.stream("POST", srv.url + "/v1/chat/completions", headers=headers, timeout=60,
                      json=body("left-stream", stream=True)) as resp:
        for event in events(resp.iter_lines()):
            received.append(event["choices"][0]["delta"].get("content") or "")
            if len(received) > 4:
                break
    row = wait_for_row(service, "left-stream")
    assert row["error"].startswith("cancelled")
    assert row["response"].startswith("".join(received)) and row["completion_tokens"] >= 4


def test_a_killed_worker_is_an_error_event_and_its_row_keeps_the_text(serve, service):
    srv = serve(first_byte_s=0)
    headers = {"x-leeroo-conversation": "killed"}
    got = []
    with httpx.stream("POST", srv.url + "/v1/chat/completions", headers=headers, timeout=60,
                      json=body("killed", stream=True)) as resp:
        lines = resp.iter_lines()
        for event in events(lines):
            got.append(event)
            if len(got) == 4:
                pid = next(s["pid"] for s in service.pool().status() if s["expert"] == "tiny-2:F32")
                os.kill(pid, signal.SIGKILL)
        assert got[-1] == "[DONE]"
    assert got[-2]["error"]["code"] == "expert_crashed"
    row = wait_for_row(service, "killed")
    assert row["error"].startswith("ExpertCrashed") and row["response"]
    assert row["completion_tokens"] >= 3


def test_health_does_not_call_a_killed_idle_worker_loaded(serve, service):
    srv = serve()
    httpx.post(srv.url + "/v1/chat/completions", timeout=60,
               json={"model": "tiny-3", "messages": HELLO, "max_tokens": 2})
    slot = next(s for s in service.pool().status() if s["expert"] == "tiny-3:F32")
    assert slot["loaded"]
    os.kill(slot["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 30
    while True:
        health = httpx.get(srv.url + "/health").json()
        tiny3 = next(e for e in health["experts"] if e["expert"] == "tiny-3")
        if not tiny3["loaded"]:
            break
        assert time.monotonic() < deadline, "a killed worker is still reported as loaded"
        time.sleep(0.05)
    again = httpx.post(srv.url + "/v1/chat/completions", timeout=60,
                       json={"model": "tiny-3", "messages": HELLO, "max_tokens": 2})
    assert again.status_code == 200 and again.json()["leeroo"]["timings"]["load_s"] > 0


def test_max_tokens_beyond_the_context_is_capped_and_the_response_says_so(serve):
    srv = serve()
    resp = httpx.post(srv.url + "/v1/chat/completions", timeout=60,
                      json={"model": "tiny-1", "messages": HELLO, "max_tokens": 10**12})
    assert resp.status_code == 200
    notes = resp.json()["leeroo"]["notes"]
    assert notes == json.loads(resp.headers["x-leeroo-notes"])
    assert f"capped at {N_CTX}" in notes[0] and str(10**12) in notes[0]
    small = httpx.post(srv.url + "/v1/chat/completions", timeout=60,
                       json={"model": "tiny-1", "messages": HELLO, "max_tokens": 2})
    assert small.json()["leeroo"]["notes"] == [] and "x-leeroo-notes" not in small.headers


def test_the_bearer_scheme_is_case_insensitive_and_the_key_is_not(serve):
    srv = serve(api_key="s3cret-key")
    for header, status in (("Bearer s3cret-key", 200), ("bearer s3cret-key", 200),
                           ("BEARER  s3cret-key", 200), ("Bearer S3CRET-KEY", 401),
                           ("Basic s3cret-key", 401), ("s3cret-key", 401)):
        resp = httpx.get(srv.url + "/v1/models", headers={"authorization": header})
        assert resp.status_code == status, header


def test_shutdown_lets_a_request_in_flight_finish_within_the_grace(service):
    settings = ServerSettings(port=0, shutdown_grace_s=60)
    srv = BackgroundServer(create_app(service, settings), settings).start()
    headers = {"x-leeroo-conversation": "graced"}
    with httpx.stream("POST", srv.url + "/v1/chat/completions", headers=headers, timeout=60,
                      json=body("graced", stream=True, max_tokens=300)) as resp:
        lines = resp.iter_lines()
        first = next(line for line in lines if line.startswith("data: "))
        stopper = threading.Thread(target=srv.stop)
        stopper.start()
        got = list(events([first, *lines]))
    stopper.join(90)
    assert got[-1] == "[DONE]" and got[-2]["choices"][0]["finish_reason"] == "length"
    assert wait_for_row(service, "graced")["error"] is None
    with pytest.raises(httpx.ConnectError):
        httpx.get(srv.url + "/health")


def test_shutdown_ends_what_outlives_the_grace_with_an_error_event_and_a_row(service):
    settings = ServerSettings(port=0, shutdown_grace_s=0.3, first_byte_s=0)
    srv = BackgroundServer(create_app(service, settings), settings).start()
    ends = {}

    def stream(name, expert):
        headers = {"x-leeroo-conversation": name}
        with httpx.stream("POST", srv.url + "/v1/chat/completions", headers=headers, timeout=60,
                          json={**body(name, stream=True), "model": expert}) as resp:
            ends[name] = list(events(resp.iter_lines()))

    # tiny-2 streams for a long time; a second request waits behind it in tiny-2's queue
    threads = [threading.Thread(target=stream, args=("long", "tiny-2"))]
    threads[0].start()
    while not any(s["busy"] for s in service.pool().status() if s["expert"] == "tiny-2:F32"):
        time.sleep(0.01)
    threads.append(threading.Thread(target=stream, args=("behind", "tiny-2")))
    threads[1].start()
    while not any(s["queued"] for s in service.pool().status() if s["expert"] == "tiny-2:F32"):
        time.sleep(0.01)
    srv.stop()
    for t in threads:
        t.join(60)
    for name in ("long", "behind"):
        got = ends[name]
        assert got[-1] == "[DONE]", name
        assert got[-2]["error"]["code"] == "server_shutting_down", name
        assert wait_for_row(service, name)["error"] == "cancelled: the server shut down", name
