"""Hostile or broken requests: every field has a bound that keeps llama.cpp's memory flat, text
UTF-8 cannot carry is a 400 naming the field, and each refusal still gets its log row; a request
log that cannot be written never changes an answer. A live server with tiny real experts."""

from __future__ import annotations

import json

import httpx
import psutil
import pytest

from helpers import wait_for_row
from test_server import N_CTX, make_service
from leeroo_local.limits import (MAX_CONTEXT, MAX_MESSAGES, MAX_NAME_CHARS, MAX_STOP_CHARS,
                                 MAX_VOCAB, SEED_MAX)
from leeroo_local.server import BackgroundServer, ServerSettings, create_app
from leeroo_local.server.schemas import (ChatCompletionRequest, CompletionRequest, Message,
                                         TextPart)

HELLO = [{"role": "user", "content": "hello"}]


@pytest.fixture(scope="module")
def service(tmp_path_factory, tiny_dir):
    svc = make_service(tmp_path_factory.mktemp("hostile"), tiny_dir)
    yield svc
    svc.close()


@pytest.fixture(scope="module")
def url(service):
    settings = ServerSettings(port=0)
    server = BackgroundServer(create_app(service, settings), settings).start()
    yield server.url
    server.stop()


def post(url, path, body, conversation=None, raw: bytes | None = None) -> httpx.Response:
    headers = {"x-leeroo-conversation": conversation} if conversation else {}
    if raw is not None:
        headers["content-type"] = "application/json"
        return httpx.post(url + path, content=raw, headers=headers, timeout=60)
    return httpx.post(url + path, json=body, headers=headers, timeout=60)


def chat(**extra):
    return {"model": "tiny-1", "messages": HELLO, "max_tokens": 2, **extra}


def worker_rss(service, expert: str) -> tuple[int, int]:
    """(pid, resident bytes) of the worker process holding `expert`."""
    pid = next(row["pid"] for row in service.pool().status() if row["expert"].startswith(expert + ":"))
    return pid, psutil.Process(pid).memory_info().rss


# -- penalty windows: the requests, and the worker's memory ------------------------------

def test_huge_penalty_windows_are_refused_and_the_worker_memory_stays_flat(url, service):
    assert post(url, "/v1/chat/completions", chat(model="tiny-2")).status_code == 200  # loaded
    pid, before = worker_rss(service, "tiny-2")
    for value in (250_000_000, 250_000_000, 250_000_000, 2_000_000_000, 2**40):
        resp = post(url, "/v1/chat/completions", chat(model="tiny-2", repeat_last_n=value),
                    conversation=f"window-{value}")
        assert resp.status_code == 422, resp.text
        error = resp.json()["error"]
        assert error["param"] == "repeat_last_n" and f"{MAX_CONTEXT:,}".replace(",", "") in \
            error["message"].replace(",", "")
        assert wait_for_row(service, f"window-{value}")["error"].startswith("refused (422)")
    # Within the static bound but past the context: capped, said so, and answered.
    resp = post(url, "/v1/chat/completions", chat(model="tiny-2", repeat_last_n=MAX_CONTEXT))
    assert resp.status_code == 200
    assert f"repeat_last_n {MAX_CONTEXT} is more than the context holds: capped at {N_CTX}" in \
        resp.json()["leeroo"]["notes"][0]
    same, after = worker_rss(service, "tiny-2")
    assert same == pid  # the same worker answered throughout
    assert after <= before * 1.10, f"worker {pid}: {before >> 20} -> {after >> 20} MiB"


# -- every numeric and list field has a bound ----------------------------------------------------

CAPPED = {"max_tokens", "max_completion_tokens"}  # bounded by the context: capped, with a note


def _unbounded(schema: dict) -> bool:
    """True when a JSON schema (not following $refs: each model is checked on its own) admits a
    number without a maximum or an array without maxItems."""
    if schema.get("type") in ("integer", "number") and not (
            "maximum" in schema or "exclusiveMaximum" in schema):
        return True
    if schema.get("type") == "array" and ("maxItems" not in schema or _unbounded(schema["items"])):
        return True
    return any(_unbounded(s) for s in schema.get("anyOf", []))


@pytest.mark.parametrize("model", [ChatCompletionRequest, CompletionRequest, Message, TextPart])
def test_every_numeric_and_list_field_has_a_bound(model):
    properties = model.model_json_schema()["properties"]
    unbounded = [name for name, schema in properties.items()
                 if _unbounded(schema) and name not in CAPPED]
    assert not unbounded, f"{model.__name__}: no upper bound on {unbounded}"


PAST_THE_BOUND = [  # (endpoint, field, value past its bound, the bound the 422 names)
    ("chat", "temperature", 2.5, "2"), ("chat", "top_p", 1.5, "1"), ("chat", "n", 129, "128"),
    ("chat", "seed", SEED_MAX + 1, str(SEED_MAX)), ("chat", "seed", 2**70, str(SEED_MAX)),
    ("chat", "frequency_penalty", 3, "2"), ("chat", "presence_penalty", -3, "-2"),
    ("chat", "top_k", MAX_VOCAB + 1, str(MAX_VOCAB)), ("chat", "top_k", 10**12, str(MAX_VOCAB)),
    ("chat", "min_p", 2, "1"), ("chat", "repeat_penalty", 3, "2"),
    ("chat", "repeat_last_n", MAX_CONTEXT + 1, str(MAX_CONTEXT)),
    ("chat", "repeat_last_n", -1, "0"), ("chat", "top_logprobs", 21, "20"),
    ("chat", "temperature", 1e308, "2"),
    ("chat", "model", "m" * (MAX_NAME_CHARS + 1), str(MAX_NAME_CHARS)),
    ("chat", "stop", "s" * (MAX_STOP_CHARS + 1), str(MAX_STOP_CHARS)),
    ("chat", "stop", ["s"] * (MAX_MESSAGES + 1), str(MAX_MESSAGES)),
    ("chat", "messages", HELLO * (MAX_MESSAGES + 1), str(MAX_MESSAGES)),
    ("complete", "best_of", 21, "20"), ("complete", "logprobs", 6, "5"),
    ("complete", "n", 10**9, "128"), ("complete", "prompt", ["x"] * (MAX_MESSAGES + 1),
                                        str(MAX_MESSAGES)),
]


@pytest.mark.parametrize("endpoint,field,value,bound", PAST_THE_BOUND,
                         ids=[f"{e}-{f}-{str(v)[:12]}" for e, f, v, _ in PAST_THE_BOUND])
def test_a_value_past_its_bound_is_a_422_naming_the_field_and_the_bound(url, service, endpoint,
                                                                          field, value, bound):
    base = chat() if endpoint == "chat" else {"model": "tiny-1", "prompt": "hi", "max_tokens": 2}
    path = "/v1/chat/completions" if endpoint == "chat" else "/v1/completions"
    resp = post(url, path, {**base, field: value})
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["param"].split(".")[0] == field and error["code"] == "invalid_request_body"
    assert bound in error["message"].replace(",", ""), error["message"]


def test_a_message_parts_name_and_type_have_bounds(url):
    too_many = {"role": "user", "content": [{"type": "text", "text": "a"}] * (MAX_MESSAGES + 1)}
    long_name = {"role": "user", "content": "hi", "name": "n" * (MAX_NAME_CHARS + 1)}
    long_type = {"role": "user", "content": [{"type": "t" * (MAX_NAME_CHARS + 1)}]}
    for message, where in ((too_many, "messages.0.content"), (long_name, "messages.0.name"),
                           (long_type, "messages.0.content")):
        resp = post(url, "/v1/chat/completions", chat(messages=[message]))
        assert resp.status_code == 422 and resp.json()["error"]["param"].startswith(where)


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
def test_nan_and_infinity_are_refused(url, literal):
    raw = b'{"model": "tiny-1", "messages": [{"role": "user", "content": "hi"}], "temperature": ' \
          + literal + b"}"
    resp = post(url, "/v1/chat/completions", None, raw=raw)
    assert resp.status_code == 422 and resp.json()["error"]["param"] == "temperature"


def test_max_tokens_has_the_context_as_its_bound(url):
    resp = post(url, "/v1/completions", {"model": "tiny-1", "prompt": "hi", "max_tokens": 10**30})
    assert resp.status_code == 200
    assert resp.json()["leeroo"]["notes"] == [
        f"max_tokens {10**30} is more than the context holds: capped at {N_CTX} (n_ctx)"]


def test_a_seed_anywhere_in_openais_range_answers_reproducibly(url):
    a, b = (post(url, "/v1/chat/completions", chat(seed=SEED_MAX, max_tokens=6, temperature=1))
            for _ in range(2))
    assert a.status_code == b.status_code == 200
    assert a.json()["choices"][0]["message"]["content"] == b.json()["choices"][0]["message"]["content"]


# -- text that UTF-8 cannot carry ----------------------------------------------------------------

SURROGATE = "hi \ud800 there"

UNENCODABLE = [  # (endpoint, body fields, the param the 400 names)
    ("chat", {"messages": [{"role": "user", "content": SURROGATE}]}, "messages.0.content"),
    ("chat", {"messages": [{"role": "user", "content": [{"type": "text", "text": SURROGATE}]}]},
     "messages.0.content.0.text"),
    ("chat", {"messages": [{"role": "user", "content": "hi", "name": SURROGATE}]},
     "messages.0.name"),
    ("chat", {"stop": [SURROGATE]}, "stop.0"),
    ("complete", {"prompt": SURROGATE}, "prompt"),
    ("complete", {"prompt": [SURROGATE]}, "prompt.0"),
]


@pytest.mark.parametrize("endpoint,fields,param", UNENCODABLE, ids=[p for *_, p in UNENCODABLE])
def test_a_lone_surrogate_is_a_400_naming_the_field_with_a_log_row(url, service, endpoint, fields,
                                                                   param):
    conversation = f"surrogate-{param}"
    base = chat() if endpoint == "chat" else {"model": "tiny-1", "max_tokens": 2}
    path = "/v1/chat/completions" if endpoint == "chat" else "/v1/completions"
    resp = post(url, path, None, conversation, raw=json.dumps({**base, **fields}).encode())
    assert resp.status_code == 400, resp.text
    assert resp.headers["x-should-retry"] == "false"
    error = resp.json()["error"]
    assert (error["code"], error["param"]) == ("invalid_encoding", param)
    assert "U+D800" in error["message"]
    row = wait_for_row(service, conversation)
    assert row["error"].startswith("refused (400)")


def test_the_logged_prompt_keeps_the_surrogate_as_an_escape(url, service):
    post(url, "/v1/chat/completions", None, "surrogate-row",
         raw=json.dumps(chat(messages=[{"role": "user", "content": SURROGATE}])).encode())
    assert wait_for_row(service, "surrogate-row")["prompt"] == "hi \\ud800 there"


def test_a_surrogate_with_a_bad_field_is_a_422_with_a_log_row(url, service):
    body = chat(messages=[{"role": "user", "content": SURROGATE}], temperature=5)
    resp = post(url, "/v1/chat/completions", None, "surrogate-422", raw=json.dumps(body).encode())
    assert resp.status_code == 422 and resp.json()["error"]["param"] == "temperature"
    assert wait_for_row(service, "surrogate-422")["error"].startswith("refused (422)")


def test_a_surrogate_to_an_unknown_model_is_a_404_with_a_log_row(url, service):
    body = chat(model="nope", messages=[{"role": "user", "content": SURROGATE}])
    resp = post(url, "/v1/chat/completions", None, "surrogate-404", raw=json.dumps(body).encode())
    assert resp.status_code == 404, resp.text
    assert resp.json()["error"]["code"] == "model_not_found"
    row = wait_for_row(service, "surrogate-404")
    assert row["error"].startswith("refused (404)") and row["prompt"] == "hi \\ud800 there"


def test_a_surrogate_in_the_model_name_is_a_400_naming_it(url, service):
    resp = post(url, "/v1/chat/completions", None, "surrogate-model",
                raw=json.dumps(chat(model="tiny-1\ud800")).encode())
    assert resp.status_code == 400
    assert (resp.json()["error"]["code"], resp.json()["error"]["param"]) == ("invalid_encoding",
                                                                             "model")
    assert wait_for_row(service, "surrogate-model")["error"].startswith("refused (400)")


def test_the_service_refuses_unencodable_text_from_any_front_end(service):
    from leeroo_local.errors import UnencodableText

    with pytest.raises(UnencodableText) as info:
        list(service.chat([{"role": "user", "content": "argv \udcff"}], "tiny-1",
                          conversation="surrogate-service"))
    assert info.value.field == "messages.0.content"
    assert wait_for_row(service, "surrogate-service")["error"].startswith("UnencodableText")


# -- a request log that cannot be written ---------------------------------------------------------

def test_a_log_that_cannot_be_written_changes_no_answer_and_catches_up(url, service):
    db = service.log._db
    db.execute("pragma query_only = on")  # SQLite now refuses every write: "readonly database"
    try:
        for i in range(3):
            resp = post(url, "/v1/chat/completions", chat(), conversation=f"unlogged-{i}")
            assert resp.status_code == 200 and resp.json()["choices"][0]["message"]["content"]
        refused = post(url, "/v1/chat/completions", chat(temperature=9), conversation="unlogged-r")
        assert refused.status_code == 422
        health = httpx.get(url + "/health", timeout=10).json()
        assert health["log"]["status"] == "degraded" and health["log"]["pending"] == 4
        assert "readonly" in health["log"]["reason"]
    finally:
        db.execute("pragma query_only = off")
    post(url, "/v1/chat/completions", chat(), conversation="unlogged-after")
    wait_for_row(service, "unlogged-after")
    for conversation in ("unlogged-0", "unlogged-1", "unlogged-2", "unlogged-r"):
        assert service.log.recent(5, conversation=conversation), conversation
    health = httpx.get(url + "/health", timeout=10).json()
    assert health["log"] == {"status": "ok", "pending": 0, "lost": 0, "reason": ""}
