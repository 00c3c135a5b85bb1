"""/v1/embeddings with the official `openai` client, from an embedding model (a tiny GGUF that
pools), checked against OpenAI's schema; never from a chat model; a chat never goes to the
embedding model; the worker and llama-server backends."""

from __future__ import annotations

import math

import httpx
import openai
import pytest

from conftest import LLAMA_SERVER
from helpers import tiny_expert_toml, wait_for_row
from openai_contract import OpenAIContract
from tiny_gguf import write_tiny_llama
from leeroo_local.backends.llama_server import find_llama_server
from leeroo_local.catalog import load_catalog
from leeroo_local.runtime.service import Service
from leeroo_local.server import BackgroundServer, ServerSettings, create_app
from leeroo_local.settings import Settings
from leeroo_local.store.requests import RequestLog
from leeroo_local.universe import Member, Universe

BACKENDS = ["worker", pytest.param("llama-server", marks=pytest.mark.skipif(
    find_llama_server(LLAMA_SERVER) is None, reason="no llama-server binary"))]


def serve(tmp, tiny_dir, members, backend="worker"):
    (tmp / "models.toml").write_text(tiny_expert_toml("chat", tiny_dir, "tiny-1.gguf")
                                     + tiny_expert_toml("embed", tmp, "embed.gguf", instruct=False))
    settings = Settings(n_threads=1, keep_alive_s=600, local_backend=backend,
                        llama_server=find_llama_server(LLAMA_SERVER) or "")
    service = Service(settings, catalog=load_catalog(extra=[tmp / "models.toml"]),
                      universe=Universe(members=[Member(expert=m, quant="F32") for m in members],
                                        n_ctx=256),
                      log=RequestLog(tmp / "log.db"))
    server_settings = ServerSettings(port=0)
    return service, BackgroundServer(create_app(service, server_settings), server_settings).start()


@pytest.fixture(scope="module", params=BACKENDS)
def served(request, tmp_path_factory, tiny_dir):
    tmp = tmp_path_factory.mktemp("embed")
    write_tiny_llama(tmp / "embed.gguf", seed=4, metadata={"llama.pooling_type": 1})
    service, server = serve(tmp, tiny_dir, ["chat", "embed"], request.param)
    yield service, server.url
    server.stop()
    service.close()


def test_vectors_come_from_the_embedding_model_in_order(served):
    service, url = served
    client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
    texts = ["def add(a, b): return a + b", "the lighthouse keeper", "def add(a, b): return a + b"]
    result = client.embeddings.create(model="auto", input=texts)  # base64, decoded by the SDK
    assert result.model == "embed" and [d.index for d in result.data] == [0, 1, 2]
    vectors = [d.embedding for d in result.data]
    assert len({len(v) for v in vectors}) == 1 and len(vectors[0]) == 64
    assert all(abs(math.sqrt(sum(x * x for x in v)) - 1) < 1e-3 for v in vectors)  # normalised
    assert vectors[0] == pytest.approx(vectors[2], abs=1e-5) and vectors[0] != vectors[1]
    assert result.usage.prompt_tokens > 0


def test_a_float_answer_validates_against_openais_schema(served):
    _, url = served
    resp = httpx.post(url + "/v1/embeddings", timeout=60,
                      json={"model": "embed", "input": "hello", "encoding_format": "float"})
    assert resp.status_code == 200
    OpenAIContract().validate("CreateEmbeddingResponse", resp.json())
    assert resp.json()["leeroo"]["expert"] == "embed"


def test_a_chat_never_goes_to_the_embedding_model(served):
    _, url = served
    for _ in range(2):
        resp = httpx.post(url + "/v1/completions", timeout=60,
                          json={"model": "auto", "prompt": "hi", "max_tokens": 2})
        assert resp.json()["model"] == "chat"


def test_a_chat_model_does_not_embed(served):
    service, url = served
    resp = httpx.post(url + "/v1/embeddings", timeout=60, headers={"x-leeroo-conversation": "x"},
                      json={"model": "chat", "input": "hello"})
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "unsupported_capability"
    assert service.log.recent(1)[0]["error"].startswith("MissingCapability")


def test_without_an_embedding_model_a_400_says_what_to_do(tmp_path, tiny_dir):
    write_tiny_llama(tmp_path / "embed.gguf", seed=4, metadata={"llama.pooling_type": 1})
    service, server = serve(tmp_path, tiny_dir, ["chat"])
    try:
        resp = httpx.post(server.url + "/v1/embeddings", timeout=60,
                          json={"model": "auto", "input": ["a", "b"]})
        assert resp.status_code == 400
        assert "embedding model" in resp.json()["error"]["message"]
        assert "leeroo-local pull nomic-embed-text-v1.5" in resp.json()["error"]["message"]
    finally:
        server.stop()
        service.close()
