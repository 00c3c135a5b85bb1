"""`serve` through the official openai client: a live uvicorn server on 127.0.0.1 with tiny
real llama.cpp experts. Every response the client receives is validated against OpenAI's own
schemas (openai_contract.py)."""

from __future__ import annotations

import json
import threading
import time

import httpx
import httpx2
import openai
import pytest

from helpers import rows, tiny_expert_toml, wait_for_row
from openai_contract import OpenAIContract, RecordingTransport
from leeroo_local.catalog import load_catalog
from leeroo_local.server import BackgroundServer, ServerSettings, create_app
from leeroo_local.runtime.service import Service
from leeroo_local.settings import Settings
from leeroo_local.store.requests import RequestLog
from leeroo_local.universe import Member, Universe


IDS = ["tiny-1", "tiny-2", "tiny-3"]
N_CTX = 4096
HI = [{"role": "user", "content": "hi"}]


def make_service(tmp, tiny_dir, **settings) -> Service:
    """A service on the tiny experts that reads nothing from the user's home."""
    (tmp / "models.toml").write_text("".join(tiny_expert_toml(i, tiny_dir, f"{i}.gguf") for i in IDS))
    universe = Universe(members=[Member(expert=i, quant="F32") for i in IDS], n_ctx=N_CTX)
    settings = Settings(**{"n_threads": 1, "ram_budget": "256MB", "keep_alive_s": 600, **settings})
    return Service(settings, catalog=load_catalog(extra=[tmp / "models.toml"]), universe=universe,
                   log=RequestLog(tmp / "requests.db"), client="serve")


@pytest.fixture(scope="module")
def service(tmp_path_factory, tiny_dir):
    svc = make_service(tmp_path_factory.mktemp("serve"), tiny_dir)
    yield svc
    svc.close()


@pytest.fixture(scope="module")
def contract():
    return OpenAIContract()


@pytest.fixture(scope="module")
def server(service):
    settings = ServerSettings(port=0)
    with BackgroundServer(create_app(service, settings), settings) as srv:
        yield srv


@pytest.fixture
def serve(service, contract):
    """Start another server (other settings, same or another service); stopped after the test."""
    started = []

    def start(svc=None, **settings) -> BackgroundServer:
        settings = ServerSettings(port=0, **settings)
        started.append(BackgroundServer(create_app(svc or service, settings), settings).start())
        return started[-1]

    yield start
    for srv in started:
        srv.stop()


@pytest.fixture
def client_for(contract):
    """An openai client for a server; every response it reads is checked against the contract."""
    before = len(contract.checked)

    def make(srv, api_key="unused") -> openai.OpenAI:
        http = httpx2.Client(transport=RecordingTransport(contract), timeout=60)
        return openai.OpenAI(base_url=srv.url + "/v1", api_key=api_key, max_retries=0,
                             http_client=http)

    yield make
    assert not contract.failures, contract.failures
    assert len(contract.checked) > before, "no response was validated"


@pytest.fixture
def client(server, client_for):
    return client_for(server)


def raw_events(srv, body, path="/v1/chat/completions", contract=None):
    """Every SSE line of a streamed response (comments included), checked against the contract."""
    with httpx.stream("POST", srv.url + path, json={**body, "stream": True}, timeout=60) as resp:
        assert resp.status_code == 200
        lines = list(resp.iter_lines())
    if contract is not None:
        contract.check_response("POST", path, 200, "text/event-stream",
                                ("\n".join(lines) + "\n").encode())
    return [line for line in lines if line]


# -- the contract itself ----------------------------------------------------------------------

def test_the_schemas_leave_room_for_the_leeroo_object_and_can_fail(contract):
    for name in ("CreateChatCompletionResponse", "CreateChatCompletionStreamResponse",
                 "CreateCompletionResponse", "Model", "Error"):
        assert contract.schemas[name].get("additionalProperties", True) is not False
    with pytest.raises(AssertionError, match="choices"):
        contract.validate("CreateChatCompletionResponse",
                          {"id": "x", "object": "chat.completion", "created": 1, "model": "m"})
    with pytest.raises(AssertionError, match="finish_reason"):
        contract.validate("CreateCompletionResponse", {
            "id": "x", "object": "text_completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "text": "", "logprobs": None, "finish_reason": None}]})


# -- models, health ---------------------------------------------------------------------------

def test_models_lists_auto_and_every_expert_with_quant_memory_and_load_state(client, service):
    client.chat.completions.create(model="tiny-1", messages=HI, max_tokens=2)
    models = client.models.list().data
    assert [m.id for m in models] == ["auto"] + IDS
    facts = {m.id: m.model_extra["leeroo"] for m in models}
    assert facts["auto"]["members"] == IDS
    assert all(facts[i]["quant"] == "F32" and facts[i]["memory_bytes"] > 0 for i in IDS)
    assert facts["tiny-1"]["loaded"] is True
    one = client.models.retrieve("tiny-2")
    assert one.id == "tiny-2" and one.model_extra["leeroo"]["quant"] == "F32"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("nope")


def test_health_says_ready_and_which_experts_are_loaded(server, service):
    body = httpx.get(server.url + "/health").json()
    assert body["status"] == "ready"
    assert [e["expert"] for e in body["experts"]] == IDS


# -- answers ----------------------------------------------------------------------------------

def test_chat_names_the_expert_and_carries_route_timings_energy(client, service):
    raw = client.chat.completions.with_raw_response.create(
        model="tiny-2", messages=HI, max_tokens=6, seed=1,
        extra_headers={"x-leeroo-conversation": "whole"})
    answer = raw.parse()
    route = json.loads(raw.headers["x-leeroo-route"])
    assert raw.headers["x-leeroo-expert"] == "tiny-2" and route["expert"] == "tiny-2"
    assert route["reason"]
    assert answer.model == "tiny-2" and answer.choices[0].finish_reason in ("stop", "length")
    extra = answer.model_extra["leeroo"]
    assert extra["route"] == route and extra["energy"]["method"] in ("measured", "estimated")
    assert extra["timings"]["total_s"] > 0
    row = rows(service, "whole")[0]
    assert row["expert"] == "tiny-2" and row["error"] is None and row["client"] == "serve"
    assert row["response"] == answer.choices[0].message.content
    assert row["completion_tokens"] == answer.usage.completion_tokens <= 6


def test_chat_stream_with_usage(client, service):
    chunks = list(client.chat.completions.create(
        model="tiny-3", messages=HI, max_tokens=8, seed=2, stream=True,
        stream_options={"include_usage": True}, extra_headers={"x-leeroo-conversation": "usage"}))
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finals = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finals) == 1 and finals[0].model_extra["leeroo"]["expert"] == "tiny-3"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert [c for c in chunks if c.usage] == [chunks[-1]]
    row = rows(service, "usage")[0]
    assert row["response"] == text and row["completion_tokens"] == chunks[-1].usage.completion_tokens
    assert chunks[-1].usage.total_tokens == row["prompt_tokens"] + row["completion_tokens"]


def test_chat_stream_without_usage_sends_none(client):
    chunks = list(client.chat.completions.create(model="tiny-1", messages=HI, max_tokens=4,
                                                 stream=True))
    assert all(c.usage is None for c in chunks) and chunks[-1].choices[0].finish_reason


def test_completions_whole_and_streamed(client):
    whole = client.completions.create(model="tiny-2", prompt="abc", max_tokens=5, seed=3,
                                      temperature=0)
    assert whole.model == "tiny-2" and whole.usage.completion_tokens <= 5
    assert whole.model_extra["leeroo"]["expert"] == "tiny-2"
    parts = list(client.completions.create(model="tiny-2", prompt="abc", max_tokens=5, seed=3,
                                           temperature=0, stream=True,
                                           stream_options={"include_usage": True}))
    assert "".join(p.choices[0].text for p in parts if p.choices) == whole.choices[0].text
    assert parts[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_auto_answers_on_a_member_and_says_which(client, service):
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=HI, max_tokens=3, extra_headers={"x-leeroo-conversation": "auto"})
    answer = raw.parse()
    assert answer.model in IDS and raw.headers["x-leeroo-expert"] == answer.model
    assert json.loads(raw.headers["x-leeroo-route"])["reason"]
    assert rows(service, "auto")[0]["expert"] == answer.model


# -- errors -----------------------------------------------------------------------------------

def test_prompt_over_the_context_is_400_with_token_counts(client, service):
    long = [{"role": "user", "content": "y" * (N_CTX + 100)}]
    for stream in (False, True):  # tiny-1 is warm: even a stream gets its status code
        with pytest.raises(openai.BadRequestError) as info:
            client.chat.completions.create(model="tiny-1", messages=long, stream=stream,
                                           extra_headers={"x-leeroo-conversation": "over"})
        error = info.value.body
        assert error["code"] == "context_length_exceeded"
        assert error["prompt_tokens"] > error["n_ctx"] == N_CTX
        assert str(error["prompt_tokens"]) in error["message"]
    assert rows(service, "over")[0]["error"].startswith("ContextOverflow")
    with pytest.raises(openai.BadRequestError, match="context"):
        client.completions.create(model="tiny-1", prompt="z" * (N_CTX + 5))


def test_unknown_model_is_404_and_never_a_path(client, tmp_path):
    for name in ("gpt-4o", "../../../etc/passwd", str(tmp_path / "x.gguf")):
        with pytest.raises(openai.NotFoundError) as info:
            client.chat.completions.create(model=name, messages=HI)
        assert info.value.body["code"] == "model_not_found" and "auto" in info.value.body["message"]
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="nope", prompt="x")
    assert list(tmp_path.iterdir()) == []


def test_malformed_body_is_422_naming_the_field(client, server, contract):
    with pytest.raises(openai.UnprocessableEntityError) as info:
        client.chat.completions.create(model="tiny-1", messages=[{"role": "robot", "content": "x"}])
    assert info.value.body["param"] == "messages.0.role"
    with pytest.raises(openai.UnprocessableEntityError):
        client.chat.completions.create(model="tiny-1", messages=HI, temperature=7)
    for body in (b"{not json", b'{"model": "tiny-1"}'):
        resp = httpx.post(server.url + "/v1/chat/completions", content=body,
                          headers={"content-type": "application/json"})
        assert resp.status_code == 422
        contract.validate("ErrorResponse", resp.json())


def test_what_cannot_be_honoured_is_400_naming_the_field(client):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="tiny-1", messages=HI, n=2)
    assert info.value.body["param"] == "n"
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="tiny-1", messages=HI, logprobs=True)
    assert info.value.body["param"] == "logprobs"
    with pytest.raises(openai.BadRequestError) as info:
        client.completions.create(model="tiny-1", prompt="x", echo=True)
    assert info.value.body["param"] == "echo"
    image = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]
    with pytest.raises(openai.BadRequestError, match="image_url"):
        client.chat.completions.create(model="tiny-1", messages=image)
    parts = [{"role": "user", "content": [{"type": "text", "text": "h"}, {"type": "text", "text": "i"}]}]
    assert client.chat.completions.create(model="tiny-1", messages=parts, max_tokens=2).choices


def test_a_key_is_required_when_one_is_set(serve, client_for):
    srv = serve(api_key="s3cret-key")
    for wrong in ("unused", "s3cret-key-2"):
        with pytest.raises(openai.AuthenticationError) as info:
            client_for(srv, api_key=wrong).models.list()
        assert info.value.body["code"] == "invalid_api_key"
    resp = httpx.post(srv.url + "/v1/chat/completions", content=b"{not json")
    assert resp.status_code == 401  # the key is checked before the body is read
    good = client_for(srv, api_key="s3cret-key")
    assert good.chat.completions.create(model="tiny-1", messages=HI, max_tokens=2).choices
    assert httpx.get(srv.url + "/health").status_code == 200


def test_a_body_over_the_limit_is_413(serve, client_for, contract, service):
    srv = serve(max_body_bytes=4096)
    with pytest.raises(openai.APIStatusError) as info:
        client_for(srv).chat.completions.create(
            model="tiny-1", messages=[{"role": "user", "content": "x" * 5000}],
            extra_headers={"x-leeroo-conversation": "too-large"})
    assert info.value.status_code == 413 and info.value.body["code"] == "request_too_large"
    row = wait_for_row(service, "too-large")  # refused unread, still logged
    assert row["error"].startswith("refused (413)") and row["prompt"] == ""

    def chunked():  # no Content-Length: the limit is found while reading
        for _ in range(8):
            yield b"x" * 1024

    resp = httpx.post(srv.url + "/v1/chat/completions", content=chunked())
    assert resp.status_code == 413
    contract.validate("ErrorResponse", resp.json())


def test_no_expert_that_can_be_loaded_is_503(serve, client_for, tmp_path, tiny_dir):
    small = make_service(tmp_path, tiny_dir, ram_budget="1MB")
    try:
        client = client_for(serve(small))
        for stream in (False, True):
            with pytest.raises(openai.InternalServerError) as info:
                client.chat.completions.create(model="auto", messages=HI, stream=stream)
            assert info.value.status_code == 503 and info.value.body["code"] == "expert_unavailable"
            assert "budget" in info.value.body["message"]
            assert info.value.response.headers["x-should-retry"] == "false"
    finally:
        small.close()


# -- streams: cold loads, errors in a started stream ------------------------------------------

def test_request_threads_are_kept_for_the_next_request_then_end_when_idle():
    from leeroo_local.server.bridge import Threads

    threads = Threads(keep=1, idle_s=0.3)
    ran: list[threading.Thread] = []
    for _ in range(2):
        done = threading.Event()
        threads.run(lambda: (ran.append(threading.current_thread()), done.set()), "request")
        assert done.wait(10)
        deadline = time.monotonic() + 10
        while not threads._idle and time.monotonic() < deadline:  # parked after its work
            time.sleep(0.01)
    assert ran[0] is ran[1]
    ran[0].join(10)  # idle longer than idle_s: it ends
    assert not ran[0].is_alive() and not threads._idle


def test_connections_are_served_with_nagle_off():
    """A stream's events are small writes: with Nagle's algorithm on, the first one after the
    headers waited for the client's delayed ACK (tens of ms on the first token)."""
    import asyncio
    import socket

    from leeroo_local.server.runner import bind

    async def accepted() -> int:
        sock = bind("127.0.0.1", 0)
        seen = asyncio.get_running_loop().create_future()

        async def handle(reader, writer):
            seen.set_result(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP,
                                                                       socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(handle, sock=sock)  # as uvicorn serves `bind`'s socket
        async with server:
            _, writer = await asyncio.open_connection("127.0.0.1", sock.getsockname()[1])
            nodelay = await asyncio.wait_for(seen, 10)
            writer.close()
        return nodelay

    assert asyncio.run(accepted())


def test_a_stream_to_a_cold_expert_starts_before_the_load_ends(serve, service, contract):
    srv = serve(first_byte_s=0)
    service.pool().unload("tiny-3:F32")
    body = {"model": "tiny-3", "messages": HI, "max_tokens": 4}
    cold = raw_events(srv, body, contract=contract)
    first_text = next(i for i, line in enumerate(cold) if '"content":"' in line and '"content":""' not in line)
    assert '"role":"assistant"' in cold[0]
    assert any(line == ": loading tiny-3 F32" for line in cold[:first_text])
    warm = raw_events(srv, body, contract=contract)
    assert not any(line.startswith(": loading") for line in warm) and warm[-1] == "data: [DONE]"


def test_a_failure_after_the_stream_started_is_an_error_event(serve, service, client_for):
    srv = serve(first_byte_s=0)
    service.pool().unload("tiny-3:F32")
    long = [{"role": "user", "content": "y" * (N_CTX + 100)}]
    stream = client_for(srv).chat.completions.create(model="tiny-3", messages=long, stream=True)
    with pytest.raises(openai.APIError) as info:
        list(stream)
    assert info.value.body["code"] == "context_length_exceeded"


# -- concurrency and cancellation -------------------------------------------------------------

def test_16_concurrent_streaming_clients_all_answered_and_logged(client_for, server, service):
    results, errors = {}, []

    def one(i):
        try:
            client = client_for(server)
            chunks = list(client.chat.completions.create(
                model=(["auto"] + IDS)[i % 4], messages=[{"role": "user", "content": f"q{i}"}],
                max_tokens=12, stream=True, stream_options={"include_usage": True},
                extra_headers={"x-leeroo-conversation": f"c16-{i}"}))
            results[i] = chunks
        except Exception as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors and len(results) == 16
    for i, chunks in results.items():
        row = rows(service, f"c16-{i}")
        assert len(row) == 1 and row[0]["error"] is None
        assert row[0]["completion_tokens"] == chunks[-1].usage.completion_tokens


def test_a_client_that_disconnects_mid_stream_cancels_its_generation(client, service):
    # tiny-2 answers "hello" greedily without an end-of-text for thousands of tokens
    hello = [{"role": "user", "content": "hello"}]
    stream = client.chat.completions.create(
        model="tiny-2", messages=hello, max_tokens=N_CTX, temperature=0, stream=True,
        extra_headers={"x-leeroo-conversation": "gone"})
    seen = [c for _, c in zip(range(4), stream)]
    stream.close()
    assert seen[-1].choices[0].delta.content
    row = wait_for_row(service, "gone", timeout=30.0)
    assert row["error"].startswith("cancelled") and row["expert"] == "tiny-2"
    again = client.chat.completions.create(model="tiny-2", messages=hello, max_tokens=3)
    assert again.model_extra["leeroo"]["timings"]["load_s"] == 0  # same worker, still in sync


def test_a_client_that_leaves_while_queued_gives_up_its_place(serve, client_for, service):
    srv = serve(first_byte_s=0)
    client = client_for(srv)
    hello = [{"role": "user", "content": "hello"}]
    holder = client.chat.completions.create(
        model="tiny-2", messages=hello, max_tokens=N_CTX, temperature=0, stream=True,
        extra_headers={"x-leeroo-conversation": "holder"})
    next(c for c in holder if c.choices and c.choices[0].delta.content)  # tiny-2 is busy now
    queued = client.chat.completions.create(
        model="tiny-2", messages=HI, max_tokens=4, stream=True,
        extra_headers={"x-leeroo-conversation": "queued"})
    assert next(iter(queued)).choices[0].delta.role == "assistant"  # the stream started at once
    queued.close()
    assert wait_for_row(service, "queued", timeout=30.0)["error"].startswith("cancelled")
    assert rows(service, "holder") == []  # the holder is still generating: it left first
    status = {r["expert"]: r for r in service.status()}
    assert status["tiny-2"]["queued"] == 0 and status["tiny-2"]["busy"]
    holder.close()
    assert wait_for_row(service, "holder", timeout=30.0)["error"].startswith("cancelled")
    after = client.chat.completions.create(model="tiny-2", messages=HI, max_tokens=2)
    assert after.model_extra["leeroo"]["timings"]["load_s"] == 0


def test_frequency_and_presence_penalties_are_honoured(client):
    def ask(**kw):
        return client.chat.completions.create(model="tiny-1", messages=HI, max_tokens=40,
                                              temperature=0, seed=1, **kw).choices[0].message.content

    plain = ask()
    assert ask() == plain  # greedy: the same answer twice
    assert ask(frequency_penalty=2.0) != plain
    assert ask(presence_penalty=2.0) != plain
    assert ask(extra_body={"repeat_penalty": 1.0}) != plain  # llama.cpp's field, default 1.1


def test_a_refused_request_has_its_log_row(server, service):
    """Every generation request is logged, refused ones too (so the log counts every request)."""
    conversation = "refusals"
    cases = [({"model": "auto", "messages": [{"role": "user", "content": "hi"}], "n": 3}, 400),
             ({"model": "nope", "messages": [{"role": "user", "content": "who?"}]}, 404),
             ({"model": "auto", "messages": "not a list"}, 422)]
    for body, status in cases:
        resp = httpx.post(server.url + "/v1/chat/completions", json=body, timeout=30,
                          headers={"x-leeroo-conversation": conversation})
        assert resp.status_code == status
    resp = httpx.post(server.url + "/v1/chat/completions", content=b"{not json", timeout=30,
                      headers={"x-leeroo-conversation": conversation,
                               "content-type": "application/json"})
    assert resp.status_code == 422
    logged = rows(service, conversation)
    assert len(logged) == 4
    assert all(r["error"].startswith("refused (") and r["expert"] is None for r in logged)
    assert {r["prompt"] for r in logged} == {"hi", "who?", ""}


def _history(topic: str) -> list[dict]:
    turns = []
    for i in range(3):
        turns += [{"role": "user", "content": f"{topic} {i}: " + "the keeper wrote the log " * 8},
                  {"role": "assistant", "content": f"noted {i}"}]
    return turns


def test_two_conversations_alternating_on_one_expert_resume_from_the_prompt_cache(client):
    """A conversation's next turn after another conversation's reuses its history's KV state;
    usage.prompt_tokens_details.cached_tokens says how much (validated against OpenAI's schema)."""
    a, b = _history("sea"), _history("bread")

    def turn(history, question):
        return client.chat.completions.create(
            model="tiny-3", max_tokens=2, temperature=0,
            messages=history + [{"role": "user", "content": question}]).usage

    turn(a, "first?")
    turn(b, "first?")  # takes the context: a's state goes to the prompt cache
    resumed = turn(a, "second?")
    # all but the new turn (about 30 tokens of a byte vocabulary) comes from the cache
    assert resumed.prompt_tokens_details.cached_tokens >= resumed.prompt_tokens - 40 > 900
    fresh = turn([{"role": "user", "content": "the keeper wrote a new log " * 8}], "third?")
    assert fresh.prompt_tokens_details.cached_tokens < 16  # nothing of it was seen before


def test_run_json_names_the_threads_it_decoded_with(tiny_dir):
    import psutil
    from typer.testing import CliRunner

    from helpers import install_tiny_universe
    from leeroo_local.cli import app

    install_tiny_universe(tiny_dir)
    result = CliRunner().invoke(app, ["run", "hello", "--json", "-n", "3", "--expert", "tiny-1"])
    assert result.exit_code == 0, result.output
    threads = json.loads(result.output)["threads"]
    physical = psutil.cpu_count(logical=False) or psutil.cpu_count()
    assert threads == {"generation": physical, "batch": physical}  # llama.cpp's own default


def test_keep_alive_on_a_request_says_how_long_its_expert_stays_loaded(server):
    def post(**extra):
        return httpx.post(server.url + "/v1/chat/completions", timeout=60,
                          json={"model": "tiny-2", "messages": HI, "max_tokens": 2, **extra})

    def card():
        return next(c["leeroo"] for c in httpx.get(server.url + "/v1/models").json()["data"]
                    if c["id"] == "tiny-2")

    assert post(keep_alive="10m").status_code == 200
    assert card()["loaded"] and 590 < card()["keep_alive_s"] <= 600
    assert post(keep_alive=0).status_code == 200  # unloaded once idle, right away
    assert not card()["loaded"]
    bad = post(keep_alive="soon")
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "keep_alive"


def test_tools_are_refused_not_ignored(server):
    """An agent that sends tools must not wait for a tool call that never comes."""
    tool = {"type": "function", "function": {"name": "now", "parameters": {"type": "object"}}}
    body = {"model": "auto", "messages": HI, "max_tokens": 2, "tools": [tool]}
    resp = httpx.post(server.url + "/v1/chat/completions", json=body, timeout=60)
    assert resp.status_code == 400
    assert (resp.json()["error"]["param"], resp.json()["error"]["code"]) == (
        "tools", "unsupported_capability")
    none = httpx.post(server.url + "/v1/chat/completions", timeout=60,
                      json={**body, "tool_choice": "none"})
    assert none.status_code == 200
