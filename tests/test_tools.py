"""Tool calls on `serve`, driven by the official `openai` and `anthropic` SDKs, whole and streamed:
a round trip (call, tool result, final answer) on tiny experts that carry the real chat templates
of Qwen2.5, Llama 3.1 and Mistral v0.3 (tests/chat_templates), on the worker and llama-server
backends. Random weights never call a tool on their own: `tool_choice` required or a named
function forces the call by grammar, which is the production path; what `auto` parses is tested
on each family's exact text in test_toolcalls.py. Every OpenAI response and chunk is checked
against OpenAI's published schemas, every Anthropic one against the SDK's types."""

from __future__ import annotations

import json
from pathlib import Path

import anthropic
import httpx
import httpx2
import jsonschema
import openai
import pytest
from anthropic.types import Message
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from conftest import LLAMA_SERVER
from helpers import anthropic_events, tiny_expert_toml, wait_for_row
from openai_contract import OpenAIContract, RecordingTransport
from tiny_gguf import write_tiny_llama
from leeroo_local.backends.llama_server import find_llama_server
from leeroo_local.catalog import load_catalog
from leeroo_local.runtime.service import Service
from leeroo_local.server import BackgroundServer, ServerSettings, create_app
from leeroo_local.settings import Settings
from leeroo_local.store.requests import RequestLog
from leeroo_local.universe import Member, Universe

TEMPLATES = Path(__file__).resolve().parent / "chat_templates"
EXPERTS = {"qwen": "Qwen-Qwen2.5-7B-Instruct.jinja",
           "llama": "meta-llama-Llama-3.1-8B-Instruct.jinja",
           "mistral": "mistralai-Mistral-7B-Instruct-v0.3.jinja"}
PARAMS = {"type": "object", "additionalProperties": False, "required": ["city", "days"],
          "properties": {"city": {"enum": ["Paris", "Oslo", "Lima"]},
                         "days": {"enum": [1, 3, 7]}}}
WEATHER = {"type": "function", "function": {"name": "get_weather", "description":
                                            "The forecast for a city.", "parameters": PARAMS}}
CLOCK = {"type": "function", "function": {"name": "now", "description": "The time.",
                                          "parameters": {"type": "object", "properties": {},
                                                         "additionalProperties": False}}}
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]
RESULT = "Sunny, 21 C"
BACKENDS = ["worker", pytest.param("llama-server", marks=pytest.mark.skipif(
    find_llama_server(LLAMA_SERVER) is None, reason="no llama-server binary"))]


@pytest.fixture(scope="module", params=BACKENDS)
def served(request, tmp_path_factory, tiny_dir):
    tmp = tmp_path_factory.mktemp("tools")
    toml = tiny_expert_toml("plain", tiny_dir, "tiny-1.gguf")
    for seed, (expert, file) in enumerate(EXPERTS.items(), start=11):
        write_tiny_llama(tmp / f"{expert}.gguf", seed=seed, name=expert, n_ctx_train=4096,
                         chat_template=(TEMPLATES / file).read_text(encoding="utf-8"))
        toml += tiny_expert_toml(expert, tmp, f"{expert}.gguf")
    (tmp / "models.toml").write_text(toml)
    settings = Settings(n_threads=1, keep_alive_s=600, local_backend=request.param,
                        llama_server=find_llama_server(LLAMA_SERVER) or "")
    members = [Member(expert=e, quant="F32") for e in ["plain", *EXPERTS]]
    service = Service(settings, catalog=load_catalog(extra=[tmp / "models.toml"]),
                      universe=Universe(members=members, n_ctx=4096),
                      log=RequestLog(tmp / "log.db"))
    server_settings = ServerSettings(port=0)
    server = BackgroundServer(create_app(service, server_settings), server_settings).start()
    yield service, server.url
    server.stop()
    service.close()


@pytest.fixture(scope="module")
def contract():
    return OpenAIContract()


@pytest.fixture
def client(served, contract):
    http = httpx2.Client(transport=RecordingTransport(contract), timeout=120)
    yield openai.OpenAI(base_url=served[1] + "/v1", api_key="unused", max_retries=0,
                        http_client=http)
    assert not contract.failures, contract.failures


@pytest.fixture
def claude(served):
    return anthropic.Anthropic(base_url=served[1], api_key="unused", max_retries=0)


def named(name="get_weather"):
    return {"type": "function", "function": {"name": name}}


def assert_weather_call(name: str, arguments: str) -> dict:
    assert name == "get_weather"
    args = json.loads(arguments)
    jsonschema.validate(args, PARAMS)
    return args


@pytest.mark.parametrize("expert", list(EXPERTS))
def test_a_tool_round_trip_with_the_openai_sdk(client, served, expert):
    first = client.chat.completions.create(
        model=expert, messages=ASK, tools=[WEATHER, CLOCK], tool_choice=named(), max_tokens=200,
        seed=1, extra_headers={"x-leeroo-conversation": f"tools-{expert}"})
    ChatCompletion.model_validate(first.model_dump())
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.type == "function" and len(call.id) == 9
    assert_weather_call(call.function.name, call.function.arguments)
    leeroo = first.model_extra["leeroo"]
    assert leeroo["expert"] == expert and leeroo["timings"]["total_s"] > 0
    assert leeroo["energy"]["joules"] >= 0 and leeroo["finish_reason"] == "tool_calls"
    row = wait_for_row(served[0], f"tools-{expert}")
    assert row["expert"] == expert and row["finish_reason"] == "tool_calls"
    assert json.loads(row["response"]) == [call.model_dump()]  # the log keeps the call

    history = ASK + [choice.message.model_dump(exclude_none=True),
                     {"role": "tool", "tool_call_id": call.id, "content": RESULT}]
    final = client.chat.completions.create(model=expert, messages=history, tools=[WEATHER, CLOCK],
                                           max_tokens=4, seed=1)
    assert final.choices[0].finish_reason in ("stop", "length")
    assert final.choices[0].message.tool_calls is None
    # the result and the call were read: the prompt grew by at least their text
    assert final.usage.prompt_tokens >= first.usage.prompt_tokens + len(RESULT)


@pytest.mark.parametrize("expert", list(EXPERTS))
def test_a_streamed_call_arrives_in_openais_deltas(client, expert):
    chunks = list(client.chat.completions.create(
        model=expert, messages=ASK, tools=[WEATHER], tool_choice="required", max_tokens=200,
        seed=2, stream=True, stream_options={"include_usage": True}))
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk.model_dump())
    deltas = [d for c in chunks if c.choices for d in (c.choices[0].delta.tool_calls or [])]
    head, rest = deltas[0], deltas[1:]
    assert head.index == 0 and head.type == "function" and head.function.name == "get_weather"
    assert len(head.id) == 9 and all(d.id is None and d.function.name is None for d in rest)
    assert len(rest) >= 1  # the arguments come in pieces after the name
    assert_weather_call(head.function.name, "".join(d.function.arguments for d in deltas))
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "tool_calls" and set(finishes[:-1]) == {None}
    assert chunks[-1].usage.completion_tokens > 0


def test_with_auto_a_call_the_expert_writes_is_parsed_out_of_its_text(client):
    """Llama 3.x writes a call as a bare JSON object; a schema (response_format) makes the random
    expert write one, and `auto` finds the call in its text, whole and streamed."""
    call = {"type": "object", "additionalProperties": False, "required": ["name", "parameters"],
            "properties": {"name": {"const": "get_weather"}, "parameters": PARAMS}}
    fmt = {"type": "json_schema", "json_schema": {"name": "call", "schema": call}}
    resp = client.chat.completions.create(model="llama", messages=ASK, tools=[WEATHER, CLOCK],
                                          response_format=fmt, max_tokens=200)
    assert resp.choices[0].finish_reason == "tool_calls"
    (found,) = resp.choices[0].message.tool_calls
    assert_weather_call(found.function.name, found.function.arguments)
    chunks = list(client.chat.completions.create(
        model="llama", messages=ASK, tools=[WEATHER, CLOCK], response_format=fmt,
        max_tokens=200, stream=True))
    deltas = [d for c in chunks for d in (c.choices[0].delta.tool_calls or [])]
    assert deltas[0].function.name == "get_weather"
    assert_weather_call("get_weather", "".join(d.function.arguments for d in deltas))
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert not any(c.choices[0].delta.content for c in chunks)  # no call leaks into the text
    plain = client.chat.completions.create(model="llama", messages=ASK, response_format=fmt,
                                           max_tokens=200)
    assert plain.choices[0].message.tool_calls is None  # without tools, the JSON is the text
    assert json.loads(plain.choices[0].message.content)["name"] == "get_weather"


def test_auto_routes_tools_only_to_experts_whose_template_renders_them(client):
    resp = client.chat.completions.create(model="auto", messages=ASK, tools=[WEATHER],
                                          tool_choice="required", max_tokens=200)
    assert resp.model in EXPERTS and resp.choices[0].finish_reason == "tool_calls"
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="plain", messages=ASK, tools=[WEATHER],
                                       max_tokens=2)
    assert (info.value.code, info.value.param) == ("unsupported_capability", "tools")
    assert "plain" in info.value.message


def test_a_tool_choice_or_tool_that_cannot_be_honoured_is_a_400(client):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="qwen", messages=ASK, tools=[WEATHER],
                                       tool_choice=named("launch"), max_tokens=2)
    assert info.value.param == "tool_choice" and "get_weather" in info.value.message
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="qwen", messages=ASK, max_tokens=2, tools=[
            {"type": "function", "function": {"name": "no spaces allowed"}}])
    assert info.value.param == "tools.0"
    two = {"role": "assistant", "content": None, "tool_calls": [
        {"id": "abcdefgh1", "type": "function", "function": {"name": "now", "arguments": "{}"}},
        {"id": "abcdefgh2", "type": "function", "function": {"name": "now", "arguments": "{}"}}]}
    with pytest.raises(openai.BadRequestError) as info:  # Llama 3's template refuses two calls
        client.chat.completions.create(model="llama", tools=[CLOCK], max_tokens=2, messages=ASK + [
            two, {"role": "tool", "tool_call_id": "abcdefgh1", "content": "noon"},
            {"role": "tool", "tool_call_id": "abcdefgh2", "content": "noon"}])
    assert info.value.param == "messages" and "single tool-calls" in info.value.message


def test_parameters_llama_cpp_cannot_follow_are_a_400_naming_tools(client):
    broken = {"type": "function", "function": {"name": "f", "parameters": {
        "type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}, "required": ["a"]}}}
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="qwen", messages=ASK, tools=[broken],
                                       tool_choice="required", max_tokens=20)
    assert (info.value.code, info.value.param) == ("invalid_json_schema", "tools")
    assert "$defs" in info.value.message or "missing" in info.value.message


def test_a_client_s_own_call_ids_are_accepted_by_mistral_s_template(client):
    history = ASK + [
        {"role": "assistant", "content": None, "tool_calls": [{
            "id": "call_from_another_server", "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Oslo", "days": 3}'}}]},
        {"role": "tool", "tool_call_id": "call_from_another_server", "content": RESULT}]
    resp = client.chat.completions.create(model="mistral", messages=history, tools=[WEATHER],
                                          max_tokens=3)
    assert resp.choices[0].finish_reason in ("stop", "length", "tool_calls")


def test_a_tool_round_trip_with_the_anthropic_sdk(claude, served):
    tools = [{"name": "get_weather", "description": "The forecast for a city.",
              "input_schema": PARAMS}]
    ask = [{"role": "user", "content": "What is the weather in Paris?"}]
    for expert in EXPERTS:
        first = claude.messages.create(model=expert, max_tokens=200, messages=ask, tools=tools,
                                       tool_choice={"type": "tool", "name": "get_weather"})
        Message.model_validate(first.model_dump())
        assert first.stop_reason == "tool_use" and first.model == expert
        (use,) = [b for b in first.content if b.type == "tool_use"]
        assert use.name == "get_weather"
        jsonschema.validate(use.input, PARAMS)
        assert first.model_extra["leeroo"]["expert"] == expert
        final = claude.messages.create(model=expert, max_tokens=4, tools=tools, messages=ask + [
            {"role": "assistant", "content": [b.model_dump() for b in first.content]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id,
                                          "content": RESULT}]}])
        assert final.stop_reason in ("end_turn", "max_tokens")
        assert final.content[0].type == "text"
        assert final.usage.input_tokens > len(RESULT)


def test_a_streamed_tool_use_follows_anthropics_events(claude, served):
    tools = [{"name": "get_weather", "input_schema": PARAMS}]
    with claude.messages.stream(model="qwen", max_tokens=200, tools=tools,
                                tool_choice={"type": "any"}, messages=[
                                    {"role": "user", "content": "Weather?"}]) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    (use,) = final.content
    assert use.type == "tool_use" and use.name == "get_weather"
    jsonschema.validate(use.input, PARAMS)

    kinds, partial = [], ""
    with httpx.stream("POST", served[1] + "/v1/messages", timeout=120, json={
            "model": "llama", "max_tokens": 200, "stream": True, "tools": tools,
            "tool_choice": {"type": "tool", "name": "get_weather"},
            "messages": [{"role": "user", "content": "Weather?"}]}) as resp:
        assert resp.status_code == 200 and resp.headers["x-leeroo-expert"] == "llama"
        for event, data in anthropic_events(resp):
            if event == "content_block_start":
                assert data["content_block"]["type"] == "tool_use"
            if event == "content_block_delta":
                assert data["delta"]["type"] == "input_json_delta"
                partial += data["delta"]["partial_json"]
            if event == "message_delta":
                assert data["delta"]["stop_reason"] == "tool_use" and "leeroo" in data
            kinds.append(event)
    assert kinds[:3] == ["message_start", "ping", "content_block_start"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    jsonschema.validate(json.loads(partial), PARAMS)


def test_count_tokens_counts_the_tools_too(claude):
    tools = [{"name": "get_weather", "input_schema": PARAMS}]
    ask = [{"role": "user", "content": "Weather?"}]
    bare = claude.messages.count_tokens(model="qwen", messages=ask)
    with_tools = claude.messages.count_tokens(model="qwen", messages=ask, tools=tools)
    assert with_tools.input_tokens > bare.input_tokens + len(json.dumps(PARAMS)) // 2
