"""Fallback: an `auto` request whose expert fails before its first token is answered by the next
member, for each cause (memory, a file llama.cpp cannot load, a crashed worker, a host that is
down, a host that times out); the route, the headers and the log row say which failed and why.
Privacy: a prompt with private content, or a conversation kept local once, never goes to a
remote member. Tiny real experts; remote ones are servers on 127.0.0.1."""

from __future__ import annotations

import json
import shutil
import socket
import threading

import httpx
import psutil
import pytest

from helpers import tiny_expert_toml, wait_for_row
from test_remote import remote_toml
from tiny_gguf import write_tiny_llama
from leeroo_local.catalog import load_catalog
from leeroo_local.errors import NoExpertLeft, RemoteError
from leeroo_local.runtime.memory_plan import MemoryPlanner
from leeroo_local.runtime.service import Progress, Result, Service
from leeroo_local.server import BackgroundServer, ServerSettings, create_app
from leeroo_local.settings import Settings
from leeroo_local.store.requests import RequestLog
from leeroo_local.universe import Member, Universe

HELLO = [{"role": "user", "content": "hello"}]
N_CTX = 256


def service_of(tmp, entries: list[tuple[str, str]], **settings) -> Service:
    """A service whose universe is `entries` (id, catalog TOML) in order: without a policy for
    them, `auto` routes to the first eligible member, so the order sets who is tried first."""
    (tmp / "models.toml").write_text("".join(toml for _, toml in entries))
    catalog = load_catalog(extra=[tmp / "models.toml"])
    members = [Member(expert=i, quant=catalog.get(i).default_quant) for i, _ in entries]
    return Service(Settings(**{"n_threads": 1, "keep_alive_s": 600, **settings}), catalog=catalog,
                   universe=Universe(members=members, n_ctx=N_CTX),
                   log=RequestLog(tmp / "log.db"))


def answer(service, messages=HELLO, conversation=None, privacy=None, on_event=None) -> Result:
    for event in service.chat(messages, "auto", service.sampling(max_tokens=3, temperature=0.0),
                              conversation=conversation, privacy=privacy):
        if on_event:
            on_event(event)
        if isinstance(event, Result):
            return event
    raise AssertionError("no result")


def local(expert_id, folder, file):
    return expert_id, tiny_expert_toml(expert_id, folder, file)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def silent_server():
    """A host that accepts connections and never answers (a hung machine)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    held, stop = [], threading.Event()

    def accept():
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(sock.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield sock.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    sock.close()


def test_memory_an_expert_too_big_for_the_budget_falls_back(tmp_path, tiny_dir):
    big = write_tiny_llama(tmp_path / "big.gguf", seed=9, n_embd=512, n_layers=4, n_ff=2048)
    entries = [local("big", tmp_path, "big.gguf"), local("tiny-1", tiny_dir, "tiny-1.gguf")]
    probe = service_of(tmp_path, entries)
    planner = MemoryPlanner(probe.catalog, probe.universe, probe.settings.prompt_cache)
    small_need, big_need = planner.need(tiny_dir / "tiny-1.gguf"), planner.need(big)
    probe.close()
    assert small_need < big_need
    service = service_of(tmp_path, entries, ram_budget=str((small_need + big_need) // 2))
    try:
        result = answer(service)
        assert result.expert == "tiny-1" and result.answer
        assert [(f.expert, f.error.split(":")[0]) for f in result.route.failed] == [
            ("big", "BudgetTooSmall")]
        row = service.log.recent(1)[0]
        assert row["expert"] == "tiny-1" and json.loads(row["fallback"])[0]["expert"] == "big"
    finally:
        service.close()


def test_a_file_llama_cpp_cannot_load_falls_back(tmp_path, tiny_dir):
    shutil.copy(tiny_dir / "tiny-2.gguf", tmp_path / "odd.gguf")
    entries = [local("odd", tmp_path, "odd.gguf"), local("tiny-2", tiny_dir, "tiny-2.gguf")]
    # Same size, a header that parses, an architecture llama.cpp does not know: its load fails.
    data = (tmp_path / "odd.gguf").read_bytes()
    (tmp_path / "odd.gguf").write_bytes(data.replace(b"llama", b"llamx"))
    service = service_of(tmp_path, entries)
    try:
        result = answer(service)
        assert result.expert == "tiny-2"
        assert result.route.failed[0].expert == "odd"
        assert result.route.failed[0].error.startswith("CorruptModel")
    finally:
        service.close()


def test_a_worker_that_crashes_before_the_first_token_falls_back(tmp_path, tiny_dir):
    shutil.copy(tiny_dir / "tiny-1.gguf", tmp_path / "doomed.gguf")
    service = service_of(tmp_path, [local("doomed", tmp_path, "doomed.gguf"),
                                    local("tiny-3", tiny_dir, "tiny-3.gguf")])
    killed = []

    def kill_when_loaded(event):
        # The service is suspended at this event, before it sends the request to the worker.
        if isinstance(event, Progress) and event.stage == "generating" and not killed:
            pid = next(r["pid"] for r in service.pool().status() if r["expert"].startswith("doomed"))
            proc = psutil.Process(pid)
            proc.kill()
            proc.wait(10)
            killed.append(pid)

    try:
        result = answer(service, on_event=kill_when_loaded)
        assert killed and result.expert == "tiny-3"
        assert result.route.failed[0].error.startswith("ExpertCrashed")
    finally:
        service.close()


def test_a_host_that_is_down_falls_back_and_is_skipped_for_a_while(tmp_path, tiny_dir):
    entries = [("far", remote_toml("far", f"http://127.0.0.1:{closed_port()}/v1", "x")),
               local("tiny-1", tiny_dir, "tiny-1.gguf")]
    service = service_of(tmp_path, entries)
    try:
        first = answer(service)
        assert first.expert == "tiny-1" and first.route.failed[0].expert == "far"
        assert first.route.failed[0].error.startswith("RemoteError")
        second = answer(service)  # the host is backing off: not tried again
        assert second.expert == "tiny-1" and second.route.failed == []
    finally:
        service.close()


def test_a_host_that_times_out_falls_back(tmp_path, tiny_dir, silent_server):
    far = remote_toml("slow", f"http://127.0.0.1:{silent_server}/v1", "x").replace(
        "timeout_s = 30", "timeout_s = 1")
    service = service_of(tmp_path, [("slow", far), local("tiny-2", tiny_dir, "tiny-2.gguf")])
    try:
        result = answer(service)
        assert result.expert == "tiny-2"
        assert "Timeout" in result.route.failed[0].error
    finally:
        service.close()


def test_a_named_expert_does_not_fall_back(tmp_path, tiny_dir):
    entries = [("far", remote_toml("far", f"http://127.0.0.1:{closed_port()}/v1", "x")),
               local("tiny-1", tiny_dir, "tiny-1.gguf")]
    service = service_of(tmp_path, entries)
    try:
        with pytest.raises(RemoteError):
            list(service.chat(HELLO, "far", service.sampling(max_tokens=2)))
    finally:
        service.close()


def test_when_every_member_fails_the_last_failure_is_the_answer(tmp_path):
    entries = [(f"far{i}", remote_toml(f"far{i}", f"http://127.0.0.1:{closed_port()}/v1", "x"))
               for i in (1, 2)]
    service = service_of(tmp_path, entries)
    try:
        with pytest.raises(RemoteError, match="far2"):
            answer(service)
        with pytest.raises(NoExpertLeft):  # both back off now
            answer(service)
    finally:
        service.close()


def test_through_the_server_the_headers_and_the_log_name_the_fallback(tmp_path, tiny_dir):
    entries = [("far", remote_toml("far", f"http://127.0.0.1:{closed_port()}/v1", "x")),
               local("tiny-1", tiny_dir, "tiny-1.gguf")]
    service = service_of(tmp_path, entries)
    settings = ServerSettings(port=0)
    server = BackgroundServer(create_app(service, settings), settings).start()
    try:
        for stream in (False, True):
            resp = httpx.post(server.url + "/v1/chat/completions", timeout=60,
                              headers={"x-leeroo-conversation": f"fb-{stream}"},
                              json={"model": "auto", "messages": HELLO, "max_tokens": 2,
                                    "stream": stream})
            assert resp.status_code == 200 and resp.headers["x-leeroo-expert"] == "tiny-1"
            if not stream:
                assert json.loads(resp.headers["x-leeroo-fallback"])[0]["expert"] == "far"
                assert resp.json()["leeroo"]["route"]["failed"][0]["expert"] == "far"
            row = wait_for_row(service, f"fb-{stream}")
            assert row["expert"] == "tiny-1"
        first = wait_for_row(service, "fb-False")
        assert json.loads(first["fallback"])[0]["error"].startswith("RemoteError")
    finally:
        server.stop()
        service.close()


# -- privacy ------------------------------------------------------------------------------------

def _remote_and_local(tmp_path, tiny_dir, url):
    return service_of(tmp_path, [("far-1", remote_toml("far-1", url, "tiny-1")),
                                 local("tiny-2", tiny_dir, "tiny-2.gguf")])


@pytest.fixture(scope="module")
def far_url(tmp_path_factory, tiny_dir):
    tmp = tmp_path_factory.mktemp("far-privacy")
    (tmp / "models.toml").write_text(tiny_expert_toml("tiny-1", tiny_dir, "tiny-1.gguf"))
    far = Service(Settings(n_threads=1, keep_alive_s=600),
                  catalog=load_catalog(extra=[tmp / "models.toml"]),
                  universe=Universe(members=[Member(expert="tiny-1", quant="F32")], n_ctx=N_CTX),
                  log=RequestLog(tmp / "far.db"), client="far")
    settings = ServerSettings(port=0)
    server = BackgroundServer(create_app(far, settings), settings).start()
    yield server.url + "/v1"
    server.stop()
    far.close()


def test_private_content_keeps_the_prompt_here_and_the_route_names_the_rule(tmp_path, tiny_dir,
                                                                          far_url):
    service = _remote_and_local(tmp_path, tiny_dir, far_url)
    try:
        assert answer(service).expert == "far-1"  # nothing private: the policy's choice
        secret = [{"role": "user", "content": "mail jane.doe@example.com the report"}]
        kept = answer(service, secret, conversation="c1")
        assert kept.expert == "tiny-2"
        assert kept.route.privacy.local_only and kept.route.privacy.rule == "email"
        assert "jane" not in json.dumps(kept.route.model_dump())  # the rule, never the text
        assert service.log.recent(1)[0]["privacy"] == "email"
        # The same conversation stays here, even without private content now.
        later = answer(service, [{"role": "user", "content": "and a summary?"}], conversation="c1")
        assert later.expert == "tiny-2" and later.route.privacy.rule == "conversation"
        assert answer(service, conversation="c2").expert == "far-1"  # another conversation
        header = answer(service, privacy="local-only")
        assert header.expert == "tiny-2" and header.route.privacy.rule == "header"
    finally:
        service.close()


def test_local_only_as_a_setting_and_a_named_remote_expert_refused(tmp_path, tiny_dir, far_url):
    (tmp_path / "models.toml").write_text(remote_toml("far-1", far_url, "tiny-1")
                                          + tiny_expert_toml("tiny-2", tiny_dir, "tiny-2.gguf"))
    service = service_of(tmp_path, [("far-1", remote_toml("far-1", far_url, "tiny-1")),
                                    local("tiny-2", tiny_dir, "tiny-2.gguf")],
                         privacy="local-only")
    try:
        result = answer(service)
        assert result.expert == "tiny-2" and result.route.privacy.rule == "setting"
        with pytest.raises(NoExpertLeft, match="far-1 is remote"):
            list(service.chat(HELLO, "far-1", service.sampling(max_tokens=2)))
    finally:
        service.close()


def test_a_bad_privacy_header_is_a_400(tmp_path, tiny_dir):
    service = service_of(tmp_path, [local("tiny-1", tiny_dir, "tiny-1.gguf")])
    settings = ServerSettings(port=0)
    server = BackgroundServer(create_app(service, settings), settings).start()
    try:
        resp = httpx.post(server.url + "/v1/chat/completions", timeout=30,
                          headers={"x-leeroo-privacy": "maybe"},
                          json={"model": "auto", "messages": HELLO, "max_tokens": 2})
        assert resp.status_code == 400 and resp.json()["error"]["param"] == "x-leeroo-privacy"
    finally:
        server.stop()
        service.close()


def test_a_conversation_kept_local_stays_local_after_a_restart(tmp_path, tiny_dir, far_url):
    first = _remote_and_local(tmp_path, tiny_dir, far_url)
    try:
        answer(first, [{"role": "user", "content": "my IBAN is GB82 WEST 1234 5698 7654 32"}],
               conversation="bank")
    finally:
        first.close()
    again = _remote_and_local(tmp_path, tiny_dir, far_url)  # a new process, the same log
    try:
        later = answer(again, [{"role": "user", "content": "and the rate?"}], conversation="bank")
        assert later.expert == "tiny-2" and later.route.privacy.rule == "conversation"
    finally:
        again.close()
