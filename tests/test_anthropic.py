"""Anthropic's Messages API on `serve`, driven by the official `anthropic` SDK and checked against
its types: whole and streamed answers, the event sequence, errors in Anthropic's shape, x-api-key,
count_tokens, and a log row for each request. Tiny real llama.cpp experts."""

from __future__ import annotations

import json

import anthropic
import httpx
import pytest
from anthropic.types import Message, MessageTokensCount

from helpers import anthropic_events, wait_for_row
from test_server import N_CTX, make_service
from leeroo_local.server import BackgroundServer, ServerSettings, create_app

KEY = "a-long-enough-key"
HELLO = [{"role": "user", "content": "hello"}]


@pytest.fixture(scope="module")
def served(tmp_path_factory, tiny_dir):
    service = make_service(tmp_path_factory.mktemp("anthropic"), tiny_dir)
    settings = ServerSettings(port=0, api_key=KEY)
    server = BackgroundServer(create_app(service, settings), settings).start()
    yield service, server.url
    server.stop()
    service.close()


@pytest.fixture
def client(served):
    return anthropic.Anthropic(base_url=served[1], api_key=KEY, max_retries=0)


def test_a_whole_answer_is_an_anthropic_message(client, served):
    message = client.messages.create(model="tiny-1", max_tokens=8, messages=HELLO,
                                     system="Answer briefly.",
                                     extra_headers={"x-leeroo-conversation": "anthropic-whole"})
    assert isinstance(message, Message)
    Message.model_validate(message.model_dump())  # every field as the SDK's type says
    assert message.model == "tiny-1" and message.role == "assistant"
    assert message.content[0].type == "text" and message.content[0].text
    assert message.stop_reason in ("end_turn", "max_tokens")
    assert message.usage.input_tokens > 0 and 1 <= message.usage.output_tokens <= 8
    leeroo = message.model_extra["leeroo"]
    assert leeroo["expert"] == "tiny-1" and leeroo["timings"]["total_s"] > 0
    row = wait_for_row(served[0], "anthropic-whole")
    assert row["expert"] == "tiny-1" and row["response"] == message.content[0].text
    assert json.loads(row["messages"])[0] == {"role": "system", "content": "Answer briefly."}


def test_a_stream_follows_anthropics_event_sequence(client, served):
    with client.messages.stream(model="tiny-2", max_tokens=12, messages=HELLO) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text and final.content[0].text == text
    assert final.stop_reason == "max_tokens" and final.usage.output_tokens == 12

    # The same stream read raw: each event validates against the SDK's own type.
    kinds = []
    with httpx.stream("POST", served[1] + "/v1/messages", timeout=60, headers={"x-api-key": KEY},
                      json={"model": "tiny-2", "max_tokens": 5, "messages": HELLO,
                            "stream": True}) as resp:
        assert resp.status_code == 200 and resp.headers["x-leeroo-expert"] == "tiny-2"
        kinds = [event for event, _ in anthropic_events(resp)]
    assert kinds[:3] == ["message_start", "content_block_start", "ping"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(kinds[3:-3]) == {"content_block_delta"}


def test_unknown_model_names_route_as_auto_and_say_so(client):
    message = client.messages.create(model="claude-sonnet-4-5", max_tokens=4, messages=HELLO)
    leeroo = message.model_extra["leeroo"]
    assert message.model in ("tiny-1", "tiny-2", "tiny-3")
    assert leeroo["notes"] == ["model 'claude-sonnet-4-5' is not served here: routed as auto"]


def test_the_key_is_taken_from_x_api_key_and_checked(served):
    wrong = anthropic.Anthropic(base_url=served[1], api_key="not-the-key", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as info:
        wrong.messages.create(model="tiny-1", max_tokens=4, messages=HELLO)
    assert info.value.body["error"]["type"] == "authentication_error"


def test_errors_come_in_anthropics_shape(client, served):
    with pytest.raises(anthropic.UnprocessableEntityError) as info:
        client.messages.create(model="tiny-1", max_tokens=0, messages=HELLO)
    assert info.value.response.json()["type"] == "error"
    assert info.value.body["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in info.value.body["error"]["message"]
    with pytest.raises(anthropic.BadRequestError) as info:
        client.messages.create(model="tiny-1", max_tokens=4, messages=HELLO,
                               tools=[{"name": "get_time", "input_schema": {"type": "object"}}])
    assert "tools" in info.value.body["error"]["message"]
    with pytest.raises(anthropic.BadRequestError) as info:
        client.messages.create(model="tiny-1", max_tokens=4,
                               messages=[{"role": "user", "content": "x " * (N_CTX * 2)}])
    assert info.value.body["error"]["type"] == "invalid_request_error"
    assert "context" in info.value.body["error"]["message"]
    raw = httpx.post(served[1] + "/v1/messages", headers={"x-api-key": KEY}, timeout=30,
                     json={"model": "tiny-1", "max_tokens": 4,
                           "messages": [{"role": "user", "content": [
                               {"type": "tool_result", "tool_use_id": "t1", "content": "12:00"}]}]})
    assert raw.status_code == 400 and raw.json()["error"]["type"] == "invalid_request_error"


def test_count_tokens_is_what_the_expert_reads(client):
    counted = client.messages.count_tokens(model="tiny-3", messages=HELLO, system="Be brief.")
    assert isinstance(counted, MessageTokensCount) and counted.input_tokens > 0
    answered = client.messages.create(model="tiny-3", max_tokens=2, messages=HELLO,
                                      system="Be brief.")
    assert counted.input_tokens == answered.usage.input_tokens


def test_a_refused_request_has_its_log_row(served):
    resp = httpx.post(served[1] + "/v1/messages", timeout=30,
                      headers={"x-api-key": KEY, "x-leeroo-conversation": "anthropic-refused"},
                      json={"model": "tiny-1", "messages": HELLO})  # no max_tokens
    assert resp.status_code == 422 and resp.json()["type"] == "error"
    assert wait_for_row(served[0], "anthropic-refused")["error"].startswith("refused (422)")
