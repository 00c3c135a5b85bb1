"""Structured output on `serve` with the official `openai` client: `response_format` json_schema
and json_object are followed by grammar, so the answer validates; schemas that cannot be
followed are 400s naming the field. Tiny real experts (random weights: only a grammar makes
them write JSON)."""

from __future__ import annotations

import json

import httpx
import jsonschema
import openai
import pytest

from test_server import make_service
from leeroo_local.limits import MAX_SCHEMA_DEPTH
from leeroo_local.server import BackgroundServer, ServerSettings, create_app

SCHEMA = {"type": "object", "additionalProperties": False, "required": ["answer", "ok", "mood"],
          "properties": {"answer": {"type": "integer"}, "ok": {"type": "boolean"},
                         "mood": {"enum": ["calm", "busy"]}}}
HELLO = [{"role": "user", "content": "hello"}]


@pytest.fixture(scope="module")
def url(tmp_path_factory, tiny_dir):
    service = make_service(tmp_path_factory.mktemp("structured"), tiny_dir)
    settings = ServerSettings(port=0)
    server = BackgroundServer(create_app(service, settings), settings).start()
    yield server.url
    server.stop()
    service.close()


@pytest.fixture
def client(url):
    return openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)


def schema_format(schema=SCHEMA):
    return {"type": "json_schema", "json_schema": {"name": "reply", "schema": schema, "strict": True}}


@pytest.mark.parametrize("expert", ["tiny-1", "tiny-2", "tiny-3", "auto"])
def test_a_json_schema_answer_validates(client, expert):
    resp = client.chat.completions.create(model=expert, messages=HELLO, max_tokens=120,
                                          response_format=schema_format())
    assert resp.choices[0].finish_reason == "stop"
    jsonschema.validate(json.loads(resp.choices[0].message.content), SCHEMA)


def test_a_streamed_json_schema_answer_validates(client):
    text = "".join(chunk.choices[0].delta.content or "" for chunk in client.chat.completions.create(
        model="tiny-2", messages=HELLO, max_tokens=120, stream=True,
        response_format=schema_format()) if chunk.choices)
    jsonschema.validate(json.loads(text), SCHEMA)


def test_completions_follow_a_schema_too(url):
    resp = httpx.post(url + "/v1/completions", timeout=60, json={
        "model": "tiny-3", "prompt": "Facts:", "max_tokens": 120,
        "response_format": schema_format()}).json()
    jsonschema.validate(json.loads(resp["choices"][0]["text"]), SCHEMA)


def test_json_object_mode_writes_a_json_object(client):
    for seed in (1, 2, 3):
        resp = client.chat.completions.create(model="tiny-1", messages=HELLO, max_tokens=60,
                                              seed=seed, response_format={"type": "json_object"})
        content = resp.choices[0].message.content
        assert content.lstrip().startswith("{"), content  # random weights never would
        if resp.choices[0].finish_reason == "stop":
            assert isinstance(json.loads(content), dict)


def test_a_schema_that_is_missing_or_too_deep_is_a_400(client):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="tiny-1", messages=HELLO,
                                       response_format={"type": "json_schema",
                                                        "json_schema": {"name": "x"}})
    assert info.value.code == "invalid_json_schema"
    deep: dict = {"type": "string"}
    for _ in range(MAX_SCHEMA_DEPTH):
        deep = {"type": "array", "items": deep}
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="tiny-1", messages=HELLO,
                                       response_format=schema_format(deep))
    assert info.value.code == "invalid_json_schema" and "levels" in info.value.message


def test_a_schema_llama_cpp_cannot_follow_is_a_400_naming_response_format(client):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="tiny-1", messages=HELLO,
            response_format=schema_format({"type": "object", "properties": {
                "a": {"$ref": "#/$defs/missing"}}, "required": ["a"]}))
    assert info.value.code == "invalid_json_schema"
    assert info.value.param == "response_format"


def test_a_body_nested_past_the_parser_is_refused_not_a_500(url):
    raw = b'{"model": "tiny-1", "messages": [{"role": "user", "content": "hi"}], "x": ' + \
        b"[" * 100_000 + b"]" * 100_000 + b"}"
    resp = httpx.post(url + "/v1/chat/completions", content=raw, timeout=30,
                      headers={"content-type": "application/json"})
    assert 400 <= resp.status_code < 500, resp.text
