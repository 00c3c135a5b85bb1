"""One suite for every Backend (backends/base.py): the worker process with llama-cpp-python,
an OpenAI-compatible remote (a second leeroo-local server on 127.0.0.1), and llama.cpp's own
llama-server, all on the same tiny expert. The llama-server case needs the binary: on PATH or
at $LEEROO_LLAMA_SERVER (README: "llama-server backend" says how to build one)."""

from __future__ import annotations

import json
import threading

import pytest

from conftest import LLAMA_SERVER
from helpers import tiny_expert_toml
from leeroo_local.backends.base import Final, Request, Sampling
from leeroo_local.backends.llama_server import LlamaServer, find_llama_server
from leeroo_local.backends.openai_remote import RemoteExpert
from leeroo_local.catalog import OpenAISource, load_catalog
from leeroo_local.errors import ConfigError, ContextOverflow, LeerooError
from leeroo_local.runtime.pool import Pool
from leeroo_local.server import BackgroundServer, ServerSettings, create_app
from leeroo_local.runtime.service import Service
from leeroo_local.settings import Settings
from leeroo_local.store.requests import RequestLog
from leeroo_local.universe import Member, Universe
from leeroo_local.backends.worker import Worker

N_CTX = 256
GREEDY = Sampling(max_tokens=8, temperature=0.0, seed=1)
SERVER_BINARY = find_llama_server(LLAMA_SERVER)  # $LEEROO_LLAMA_SERVER, read by conftest
needs_server = pytest.mark.skipif(
    SERVER_BINARY is None, reason="llama-server binary absent: put llama.cpp's llama-server on "
    "PATH or set LEEROO_LLAMA_SERVER to it (README: llama-server backend)")


@pytest.fixture(scope="module")
def far(tmp_path_factory, tiny_dir):
    """A leeroo-local server with tiny-1: what the remote backend talks to."""
    tmp = tmp_path_factory.mktemp("far")
    (tmp / "models.toml").write_text(tiny_expert_toml("tiny-1", tiny_dir, "tiny-1.gguf"))
    svc = Service(Settings(n_threads=1, ram_budget="128MB", keep_alive_s=600),
                  catalog=load_catalog(extra=[tmp / "models.toml"]),
                  universe=Universe(members=[Member(expert="tiny-1", quant="F32")], n_ctx=N_CTX),
                  log=RequestLog(tmp / "far.db"), client="far")
    settings = ServerSettings(port=0)
    with BackgroundServer(create_app(svc, settings), settings) as srv:
        yield srv
    svc.close()


@pytest.fixture(params=["worker", "remote", pytest.param("llama-server", marks=needs_server)])
def backend(request, tiny_dir, tmp_path_factory):
    """A loaded backend serving tiny-1 at N_CTX tokens of context."""
    path = str(tiny_dir / "tiny-1.gguf")
    if request.param == "worker":
        made = Worker()
        made.load(path, N_CTX, 1)
    elif request.param == "remote":
        srv = request.getfixturevalue("far")
        made = RemoteExpert("far-1", OpenAISource(kind="openai", base_url=srv.url + "/v1",
                                                  model="tiny-1", timeout_s=60))
    else:
        made = LlamaServer(SERVER_BINARY, parallel=4)
        made.load(path, N_CTX, 1)
    yield made
    made.close()


def run(backend, op="complete", payload="hello", sampling=GREEDY, cancel=None):
    request = (Request(sampling, messages=payload) if op == "chat"
               else Request(sampling, prompt=payload))
    events = list(backend.stream(request, cancel))
    assert all(isinstance(e, str) for e in events[:-1]) and isinstance(events[-1], Final)
    return "".join(events[:-1]), events[-1]


def test_it_says_where_it_runs(backend):
    assert backend.where in ("process", "server", "remote")
    assert (backend.pid is None) == (backend.where == "remote")
    assert backend.parallel >= 1 and backend.health()


@pytest.mark.parametrize("op,payload", [("complete", "Once upon a time"),
                                        ("chat", [{"role": "user", "content": "Hi there"}])])
def test_a_stream_is_chunks_then_one_done_with_counts(backend, op, payload):
    text, final = run(backend, op, payload)
    assert text and final.finish_reason in ("length", "stop")
    assert 1 <= final.completion_tokens <= GREEDY.max_tokens and final.prompt_tokens > 0


def test_greedy_output_is_reproducible(backend):
    assert run(backend)[0] == run(backend)[0]


def test_a_set_cancel_ends_the_stream_early_and_the_backend_still_serves(backend):
    cancel = threading.Event()
    cancel.set()
    long = GREEDY.model_copy(update={"max_tokens": 200})
    _, final = run(backend, sampling=long, cancel=cancel)
    assert final.finish_reason == "cancelled" and final.completion_tokens < 200
    assert run(backend)[1].finish_reason in ("length", "stop")


def test_a_prompt_past_the_context_is_a_context_overflow_with_counts(backend):
    with pytest.raises(ContextOverflow) as err:
        run(backend, payload="x " * 600)
    assert err.value.prompt_tokens > N_CTX
    assert run(backend)[1].completion_tokens >= 1  # and it keeps serving


def test_log_likelihoods_are_values_or_a_clear_error(backend):
    if backend.where != "process":
        with pytest.raises(LeerooError, match="log-likelihoods"):
            backend.loglikelihoods("The sky is", [" blue", " green"])
        return
    values = backend.loglikelihoods("The sky is", [" blue", " green"])
    assert len(values) == 2 and all(v < 0 for v in values)


SCHEMA = {"type": "object", "additionalProperties": False, "required": ["answer", "ok", "mood"],
          "properties": {"answer": {"type": "integer"}, "ok": {"type": "boolean"},
                         "mood": {"enum": ["calm", "busy"]}}}


def test_a_json_schema_makes_the_answer_valid_json_of_that_schema(backend):
    import jsonschema

    sampling = GREEDY.model_copy(update={"max_tokens": 120, "json_schema": SCHEMA})
    text, done = run(backend, op="chat", payload=[{"role": "user", "content": "hello"}],
                     sampling=sampling)
    assert done.finish_reason == "stop", text
    jsonschema.validate(json.loads(text), SCHEMA)


def test_count_tokens_is_the_prompt_the_expert_reads_or_a_clear_error(backend):
    messages = [{"role": "user", "content": "hello there"}]
    if backend.where == "remote":
        with pytest.raises(LeerooError, match="count tokens"):
            backend.count_tokens(messages)
        return
    counted = backend.count_tokens(messages)
    assert counted > 0
    assert counted == run(backend, op="chat", payload=messages)[1].prompt_tokens


def test_close_stops_it(backend):
    backend.close()
    assert not backend.health()  # a process ended; a remote's client closed
    if backend.where == "remote":
        with pytest.raises(LeerooError):
            run(backend)


@needs_server
def test_the_pool_serves_concurrent_requests_for_one_llama_server_together(tiny_dir):
    """Four requests for one expert are inside the pool at once (the barrier would time out if
    the pool served them one after another, as it must a worker)."""
    pool = Pool(budget_bytes=2**30, n_ctx=N_CTX, n_threads=1, keep_alive_s=0,
                backend=lambda: LlamaServer(SERVER_BINARY, parallel=4))
    inside = threading.Barrier(4, timeout=60)
    results, errors = [], []

    def request():
        try:
            with pool.acquire("a", tiny_dir / "tiny-1.gguf", 2**20) as (server, _):
                inside.wait()
                results.append(run(server)[1])
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=request) for _ in range(4)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    finally:
        pool.close()
    assert not errors and len(results) == 4
    assert all(r.completion_tokens >= 1 for r in results)


def _service(tiny_dir, tmp_path, **settings) -> Service:
    (tmp_path / "models.toml").write_text(tiny_expert_toml("tiny-1", tiny_dir, "tiny-1.gguf"))
    return Service(Settings(n_threads=1, ram_budget="128MB", keep_alive_s=0, **settings),
                   catalog=load_catalog(extra=[tmp_path / "models.toml"]),
                   universe=Universe(members=[Member(expert="tiny-1", quant="F32")], n_ctx=N_CTX),
                   log=RequestLog(tmp_path / "log.db"))


def test_a_missing_llama_server_is_a_clear_error_naming_the_setting(tiny_dir, tmp_path):
    svc = _service(tiny_dir, tmp_path, local_backend="llama-server",
                   llama_server=str(tmp_path / "no-such-llama-server"))
    try:
        with pytest.raises(ConfigError, match="llama-server not found.*llama_server"):
            list(svc.complete("hello", "tiny-1", Sampling(max_tokens=2)))
    finally:
        svc.close()


@needs_server
def test_the_service_runs_an_expert_on_llama_server_when_configured(tiny_dir, tmp_path):
    svc = _service(tiny_dir, tmp_path, local_backend="llama-server", llama_server=SERVER_BINARY)
    try:
        result = list(svc.complete("hello", "tiny-1", Sampling(max_tokens=4, temperature=0)))[-1]
        assert result.expert == "tiny-1" and result.tokens["completion"] >= 1
        assert result.timings.load_s > 0 and result.energy.method in ("measured", "estimated")
        assert svc.status()[0]["loaded"]
    finally:
        svc.close()


@needs_server
def test_speculative_decoding_on_llama_server_keeps_the_greedy_answer(tiny_dir, tmp_path):
    """A draft model of the same tokenizer, or prompt lookup, only speeds decoding up: the
    greedy answer is the one the expert gives alone, and the server was started with them."""
    prompt = "abc abc abc abc abc abc abc abc"
    greedy = Sampling(max_tokens=24, temperature=0, seed=1)
    answers = {}
    for name, speculative in (("alone", {}), ("draft", {"tiny-1": "tiny-2"}),
                              ("ngram", {"tiny-1": "ngram"})):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "models.toml").write_text(tiny_expert_toml("tiny-1", tiny_dir, "tiny-1.gguf")
                                            + tiny_expert_toml("tiny-2", tiny_dir, "tiny-2.gguf"))
        svc = Service(Settings(n_threads=1, ram_budget="256MB", keep_alive_s=0,
                               local_backend="llama-server", llama_server=SERVER_BINARY,
                               speculative=speculative),
                      catalog=load_catalog(extra=[folder / "models.toml"]),
                      universe=Universe(members=[Member(expert="tiny-1", quant="F32")],
                                        n_ctx=N_CTX),
                      log=RequestLog(folder / "log.db"))
        try:
            result = list(svc.complete(prompt, "tiny-1", greedy))[-1]
            answers[name] = result.answer
            loaded = svc.pool()._slots["tiny-1:F32"].worker.loaded  # what it was started with
            expected = {"alone": None, "ngram": "ngram"}.get(name, str(tiny_dir / "tiny-2.gguf"))
            assert loaded["draft"] == expected
        finally:
            svc.close()
    assert answers["draft"] == answers["alone"] == answers["ngram"] and answers["alone"]


def test_the_worker_computes_nothing_past_its_first_chunk_until_asked(tiny_dir):
    """The second token waits until the first is handed on (Worker.stream asks for more when
    it is resumed), so it does not take the cores that delivering the first one needs."""
    worker = Worker()
    try:
        worker.load(str(tiny_dir / "tiny-1.gguf"), N_CTX, 1)
        stream = worker.stream(Request(GREEDY, prompt="hello"))
        assert isinstance(next(stream), str)
        assert not worker._conn.poll(0.5)  # the worker waits
        rest = list(stream)
        assert isinstance(rest[-1], Final) and rest[-1].completion_tokens >= 1
        assert run(worker)[1].finish_reason in ("length", "stop")  # and it keeps serving
    finally:
        worker.close()
