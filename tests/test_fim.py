"""Fill-in-the-middle for editors: `/v1/completions` with `suffix` and llama-server's `/infill`,
routed only to experts with FIM tokens; a 400 naming the capability when none has them. Tiny real
experts (one with FIM token ids in its GGUF), on the worker and the llama-server backends."""

from __future__ import annotations

import json

import httpx
import pytest

from conftest import LLAMA_SERVER
from helpers import tiny_expert_toml, wait_for_row
from tiny_gguf import write_tiny_llama
from leeroo_local.backends.llama_server import find_llama_server
from leeroo_local.catalog import load_catalog
from leeroo_local.runtime.service import Service
from leeroo_local.server import BackgroundServer, ServerSettings, create_app
from leeroo_local.settings import Settings
from leeroo_local.store.requests import RequestLog
from leeroo_local.universe import Member, Universe

FIM_IDS = {"tokenizer.ggml.fim_pre_token_id": 3, "tokenizer.ggml.fim_suf_token_id": 4,
           "tokenizer.ggml.fim_mid_token_id": 5}
PREFIX, SUFFIX = "def add(a, b):\n    return ", "\n\nprint(add(1, 2))\n"
BACKENDS = ["worker", pytest.param("llama-server", marks=pytest.mark.skipif(
    find_llama_server(LLAMA_SERVER) is None, reason="no llama-server binary"))]


@pytest.fixture(scope="module", params=BACKENDS)
def served(request, tmp_path_factory, tiny_dir):
    tmp = tmp_path_factory.mktemp("fim")
    write_tiny_llama(tmp / "coder.gguf", seed=7, metadata=FIM_IDS)
    (tmp / "models.toml").write_text(tiny_expert_toml("plain", tiny_dir, "tiny-1.gguf")
                                     + tiny_expert_toml("coder", tmp, "coder.gguf"))
    settings = Settings(n_threads=1, keep_alive_s=600, local_backend=request.param,
                        llama_server=find_llama_server(LLAMA_SERVER) or "")
    service = Service(settings, catalog=load_catalog(extra=[tmp / "models.toml"]),
                      universe=Universe(members=[Member(expert="plain", quant="F32"),
                                                 Member(expert="coder", quant="F32")], n_ctx=512),
                      log=RequestLog(tmp / "log.db"))
    server_settings = ServerSettings(port=0)
    server = BackgroundServer(create_app(service, server_settings), server_settings).start()
    yield service, server.url
    server.stop()
    service.close()


def test_a_suffix_goes_to_the_expert_with_fim_tokens(served):
    service, url = served
    resp = httpx.post(url + "/v1/completions", timeout=60, json={
        "model": "auto", "prompt": PREFIX, "suffix": SUFFIX, "max_tokens": 6, "temperature": 0})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["model"] == "coder" and body["usage"]["completion_tokens"] >= 1
    # the FIM layout: the prefix and the suffix (a byte vocabulary: a token per byte at least)
    # and three FIM tokens around them
    assert body["usage"]["prompt_tokens"] >= len(PREFIX) + len(SUFFIX) + 3
    plain = httpx.post(url + "/v1/completions", timeout=60, json={
        "model": "auto", "prompt": PREFIX, "max_tokens": 2})
    assert plain.json()["model"] == "plain"  # without a suffix, the first member as before


def test_infill_answers_in_llama_servers_shape(served):
    service, url = served
    body = {"input_prefix": PREFIX, "input_suffix": SUFFIX, "prompt": "a",
            "input_extra": [{"filename": "util.py", "text": "# helpers"}], "n_predict": 5,
            "temperature": 0}
    whole = httpx.post(url + "/infill", json=body, timeout=60, headers={
        "x-leeroo-conversation": "infill"}).json()
    assert whole["stop"] is True and whole["model"] == "coder"
    assert 1 <= whole["tokens_predicted"] <= 5
    assert whole["tokens_evaluated"] >= len("util.py\n# helpers\n\n" + PREFIX + "a" + SUFFIX) + 3
    assert wait_for_row(service, "infill")["kind"] == "complete"
    pieces, last = [], None
    with httpx.stream("POST", url + "/infill", json={**body, "stream": True}, timeout=60) as r:
        for line in r.iter_lines():
            if line.startswith("data: "):
                event = json.loads(line[6:])
                if event["stop"]:
                    last = event
                else:
                    pieces.append(event["content"])
    assert last is not None and last["content"] == "" and last["leeroo"]["expert"] == "coder"
    assert "".join(pieces) == whole["content"]  # greedy: the same middle


def test_a_named_expert_without_fim_tokens_is_a_400(served):
    _, url = served
    resp = httpx.post(url + "/v1/completions", timeout=60, json={
        "model": "plain", "prompt": PREFIX, "suffix": SUFFIX, "max_tokens": 2})
    assert resp.status_code == 400
    assert (resp.json()["error"]["code"], resp.json()["error"]["param"]) == (
        "unsupported_capability", "suffix")


def test_without_any_fim_expert_a_suffix_is_a_400_naming_the_members(tmp_path, tiny_dir):
    (tmp_path / "models.toml").write_text(tiny_expert_toml("only", tiny_dir, "tiny-2.gguf"))
    service = Service(Settings(n_threads=1), catalog=load_catalog(extra=[tmp_path / "models.toml"]),
                      universe=Universe(members=[Member(expert="only", quant="F32")], n_ctx=256),
                      log=RequestLog(tmp_path / "log.db"))
    settings = ServerSettings(port=0)
    server = BackgroundServer(create_app(service, settings), settings).start()
    try:
        resp = httpx.post(server.url + "/infill", timeout=60,
                          json={"input_prefix": "a", "input_suffix": "b"})
        assert resp.status_code == 400
        message = resp.json()["error"]["message"]
        assert "FIM tokens" in message and "only" in message
        assert "leeroo-local pull qwen2.5-coder-1.5b-instruct" in message  # where to get one
    finally:
        server.stop()
        service.close()
