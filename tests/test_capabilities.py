"""Capabilities read from GGUF headers and the catalog, and a chat request that goes to an
instruct expert whenever the universe has one (tiny real experts)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from helpers import tiny_expert_toml
from tiny_gguf import write_tiny_llama
from leeroo_local import capabilities as caps, paths
from leeroo_local.catalog import load_catalog
from leeroo_local.cli import app
from leeroo_local.runtime.service import Result, Service
from leeroo_local.settings import Settings
from leeroo_local.store.requests import RequestLog
from leeroo_local.universe import Member, Universe

TOOLS_TEMPLATE = ("{% if tools %}{{ tools | tojson }}{% endif %}{% for m in messages %}"
                  "<|{{ m['role'] }}|>{{ m['content'] }}</s>{% endfor %}<|assistant|>")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("caps")
    write_tiny_llama(folder / "plain.gguf", seed=1)
    write_tiny_llama(folder / "tools.gguf", seed=2, chat_template=TOOLS_TEMPLATE)
    write_tiny_llama(folder / "fim.gguf", seed=3, metadata={
        "tokenizer.ggml.fim_pre_token_id": 3, "tokenizer.ggml.fim_suf_token_id": 4,
        "tokenizer.ggml.fim_mid_token_id": 5})
    write_tiny_llama(folder / "embed.gguf", seed=4, metadata={"llama.pooling_type": 1})
    return folder


def test_the_header_says_tools_fim_and_embeddings(files):
    assert caps.from_header(files / "plain.gguf") == set()
    assert caps.from_header(files / "tools.gguf") == {caps.TOOLS}
    assert caps.from_header(files / "fim.gguf") == {caps.FIM}
    assert caps.from_header(files / "embed.gguf") == {caps.EMBEDDINGS}


def test_chat_is_the_catalogs_instruct_and_tools_need_it(files):
    catalog_text = (tiny_expert_toml("base-tools", files, "tools.gguf", instruct=False)
                    + tiny_expert_toml("chat-tools", files, "tools.gguf"))
    (files / "models.toml").write_text(catalog_text)
    catalog = load_catalog(extra=[files / "models.toml"])
    assert caps.of_expert(catalog.get("base-tools"), files / "tools.gguf") == set()
    assert caps.of_expert(catalog.get("chat-tools"), files / "tools.gguf") == {caps.CHAT, caps.TOOLS}
    assert caps.of_expert(catalog.get("chat-tools"), None) == {caps.CHAT}


def service(tmp, files, instruct: list[bool]) -> Service:
    ids = [f"e{i}" for i in range(len(instruct))]
    (tmp / "models.toml").write_text("".join(
        tiny_expert_toml(i, files, "plain.gguf", instruct=flag) for i, flag in zip(ids, instruct)))
    return Service(Settings(n_threads=1, keep_alive_s=600),
                   catalog=load_catalog(extra=[tmp / "models.toml"]),
                   universe=Universe(members=[Member(expert=i, quant="F32") for i in ids], n_ctx=256),
                   log=RequestLog(tmp / "log.db"))


def result(events) -> Result:
    return next(e for e in events if isinstance(e, Result))


def test_a_chat_goes_to_an_instruct_expert_and_a_completion_to_any(tmp_path, files):
    svc = service(tmp_path, files, [False, True])  # without a policy: the first eligible member
    try:
        sampling = svc.sampling(max_tokens=2, temperature=0.0)
        assert result(svc.chat([{"role": "user", "content": "hi"}], "auto", sampling)).expert == "e1"
        assert result(svc.complete("Once upon", "auto", sampling)).expert == "e0"
        assert result(svc.chat([{"role": "user", "content": "hi"}], "e0", sampling)).expert == "e0"
    finally:
        svc.close()


def test_a_universe_of_base_models_still_chats_and_the_route_says_so(tmp_path, files):
    svc = service(tmp_path, files, [False, False])
    try:
        done = result(svc.chat([{"role": "user", "content": "hi"}], "auto",
                               svc.sampling(max_tokens=2)))
        assert done.expert == "e0" and "no instruct expert in this universe" in done.route.reason
    finally:
        svc.close()


def test_experts_json_lists_capabilities(files):
    (paths.config_dir() / "models.toml").write_text(
        tiny_expert_toml("local-fim", files, "fim.gguf", instruct=False))
    out = CliRunner().invoke(app, ["experts", "--json"])
    assert out.exit_code == 0, out.output
    rows = {r["id"]: r for r in json.loads(out.output)}
    assert rows["local-fim"]["capabilities"] == ["fim"]
    assert rows["gemma-3-270m"]["capabilities"] == []  # the starter is a base model
    assert "chat" in rows["llama-3.1-8b-instruct"]["capabilities"]


def test_the_catalog_states_what_an_expert_serves_before_its_file_is_here():
    """A request that needs embeddings or fill-in-the-middle can name what to pull: the
    catalog's embedding and code experts state their capabilities; once a file is here its
    header decides."""
    from leeroo_local import capabilities as caps
    from leeroo_local.catalog import load_catalog

    catalog = load_catalog()
    assert caps.in_catalog(catalog, caps.EMBEDDINGS) == ["nomic-embed-text-v1.5"]
    assert "qwen2.5-coder-1.5b-instruct" in caps.in_catalog(catalog, caps.FIM)
    coder = catalog.get("qwen2.5-coder-1.5b-instruct")
    assert caps.of_expert(coder, None) >= {caps.FIM, caps.CHAT}
    assert caps.EMBEDDINGS in caps.of_expert(catalog.get("nomic-embed-text-v1.5"), None)
