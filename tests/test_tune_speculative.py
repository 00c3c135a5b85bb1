"""`leeroo-local tune --speculative` measures each local member alone, with prompt lookup and
with its candidate drafts, on real tiny experts in worker and llama-server processes, and keeps
what pays where the runtime reads it; the worker then decodes with prompt lookup."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from conftest import LLAMA_SERVER
from helpers import tiny_expert_toml
from leeroo_local import paths
from leeroo_local.backends.base import Sampling
from leeroo_local.catalog import load_catalog
from leeroo_local.cli import app
from leeroo_local.runtime.service import Service
from leeroo_local.settings import Settings, load_settings
from leeroo_local.store.requests import RequestLog
from leeroo_local.universe import Member, Universe
from tiny_gguf import write_tiny_llama

from leeroo_local.backends.llama_server import find_llama_server

SERVER_BINARY = find_llama_server(LLAMA_SERVER)  # $LEEROO_LLAMA_SERVER, read by conftest


@pytest.fixture
def pair(tmp_path):
    """A universe of a target and a much smaller expert of its tokenizer."""
    write_tiny_llama(tmp_path / "big.gguf", seed=1, n_embd=128, n_ff=256, n_layers=3,
                     n_ctx_train=2048)
    write_tiny_llama(tmp_path / "small.gguf", seed=2, n_embd=32, n_ff=64, n_layers=1,
                     n_ctx_train=2048)
    (paths.config_dir() / "models.toml").write_text(
        "".join(tiny_expert_toml(e, tmp_path, f"{e}.gguf") for e in ("big", "small")))
    paths.universe_path().write_text(json.dumps({"members": [
        {"expert": e, "quant": "F32"} for e in ("big", "small")], "n_ctx": 256,
        "origin": "user"}))
    return tmp_path


def _tune(*extra):
    out = CliRunner().invoke(app, ["tune", "--speculative", "--rounds", "1", "--tokens", "12",
                                   "--json", "--save", *extra])
    assert out.exit_code == 0, out.output
    return json.loads(out.output)


def _check_saved(results):
    saved = load_settings().speculative
    for r in results["experts"]:
        assert saved.get(r["expert"]) == r["chosen"]  # what pays is kept, nothing else


def test_tune_speculative_on_the_worker_measures_prompt_lookup(pair):
    (paths.config_dir() / "config.toml").write_text('local_backend = "worker"\nn_threads = 1\n')
    results = _tune("--expert", "big")
    [big] = results["experts"]
    assert big["backend"] == "worker" and big["expert"] == "big"
    options = {o["option"]: o for o in big["options"]}
    assert set(options) == {"alone", "ngram"}  # the worker has no draft models
    assert all(v > 0 for o in options.values() for v in o["tok_s"].values())
    assert set(options["ngram"]["speedup"]) == {"code", "prose"}
    assert options["ngram"]["same_answer"] == {"code": True, "prose": True}
    _check_saved(results)
    assert load_settings().local_backend == "worker"  # the rest of config.toml is kept


@pytest.mark.skipif(SERVER_BINARY is None, reason="no llama-server binary")
def test_tune_speculative_on_llama_server_tries_the_smaller_member(pair):
    (paths.config_dir() / "config.toml").write_text(
        f'llama_server = "{SERVER_BINARY}"\nn_threads = 1\n')
    results = _tune()
    by_expert = {r["expert"]: r for r in results["experts"]}
    assert set(by_expert) == {"big", "small"}
    assert [o["option"] for o in by_expert["big"]["options"]] == ["alone", "ngram", "small"]
    assert [o["option"] for o in by_expert["small"]["options"]] == ["alone", "ngram"]
    assert all(r["backend"] == "llama-server" for r in results["experts"])
    _check_saved(results)


def test_the_worker_loads_an_expert_with_prompt_lookup_when_chosen(tiny_dir, tmp_path):
    (tmp_path / "models.toml").write_text(tiny_expert_toml("tiny-1", tiny_dir, "tiny-1.gguf"))
    greedy = Sampling(max_tokens=20, temperature=0, seed=1)
    answers = {}
    for name, speculative in (("alone", {}), ("ngram", {"tiny-1": "ngram"}),
                              ("model", {"tiny-1": "tiny-2"})):  # no draft models: alone
        svc = Service(Settings(n_threads=1, ram_budget="256MB", keep_alive_s=0,
                               local_backend="worker", speculative=speculative),
                      catalog=load_catalog(extra=[tmp_path / "models.toml"]),
                      universe=Universe(members=[Member(expert="tiny-1", quant="F32")],
                                        n_ctx=256),
                      log=RequestLog(tmp_path / f"{name}.db"))
        try:
            answers[name] = list(svc.complete("abc abc abc abc abc abc", "tiny-1", greedy))[-1].answer
            loaded = svc.pool()._slots["tiny-1:F32"].worker.loaded
            assert loaded["extra"] == ({"draft": "ngram"} if name == "ngram" else {})
        finally:
            svc.close()
    assert answers["alone"] == answers["ngram"] == answers["model"] and answers["alone"]
