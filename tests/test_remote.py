"""Remote experts: a second leeroo-local server on 127.0.0.1 serves tiny experts; a local service
routes to one of them through the `openai` backend, beside a local expert."""

from __future__ import annotations

import pytest

from helpers import tiny_expert_toml
from leeroo_local.backends.base import Sampling
from leeroo_local.backends.openai_remote import RemoteError
from leeroo_local.catalog import load_catalog
from leeroo_local.errors import ContextOverflow
from leeroo_local.server import BackgroundServer, ServerSettings, create_app
from leeroo_local.runtime.service import Result, Service, TextEvent
from leeroo_local.settings import Settings
from leeroo_local.store.requests import RequestLog
from leeroo_local.universe import Member, Universe


def remote_toml(expert_id: str, base_url: str, model: str, key_env: str | None = None) -> str:
    key = f', api_key_env = "{key_env}"' if key_env else ""
    return f"""
[[experts]]
id = "{expert_id}"
name = "Remote {model}"
license = "apache-2.0"
instruct = true
source = {{ kind = "openai", base_url = "{base_url}", model = "{model}", timeout_s = 30{key} }}
"""


@pytest.fixture(scope="module")
def far_server(tmp_path_factory, tiny_dir):
    """The other machine: a leeroo-local server with tiny-1 and tiny-2, behind an API key."""
    tmp = tmp_path_factory.mktemp("far")
    (tmp / "models.toml").write_text("".join(tiny_expert_toml(i, tiny_dir, f"{i}.gguf")
                                             for i in ("tiny-1", "tiny-2")))
    universe = Universe(members=[Member(expert=i, quant="F32") for i in ("tiny-1", "tiny-2")],
                        n_ctx=256)
    svc = Service(Settings(n_threads=1, ram_budget="128MB", keep_alive_s=600),
                  catalog=load_catalog(extra=[tmp / "models.toml"]), universe=universe,
                  log=RequestLog(tmp / "far.db"), client="far")
    settings = ServerSettings(port=0, api_key="s3cret-far-key")
    with BackgroundServer(create_app(svc, settings), settings) as srv:
        yield srv, svc
    svc.close()


@pytest.fixture
def near(tmp_path, tiny_dir, far_server, monkeypatch):
    """This machine: the remote tiny-1 (as far-1) beside a local tiny-3."""
    srv, _ = far_server
    monkeypatch.setenv("FAR_KEY", "s3cret-far-key")
    (tmp_path / "models.toml").write_text(
        remote_toml("far-1", srv.url + "/v1", "tiny-1", "FAR_KEY")
        + remote_toml("far-nokey", srv.url + "/v1", "tiny-1")
        + remote_toml("far-down", "http://127.0.0.1:9/v1", "tiny-1")
        + tiny_expert_toml("tiny-3", tiny_dir, "tiny-3.gguf"))
    universe = Universe(members=[Member(expert="far-1", quant="REMOTE"),
                                 Member(expert="tiny-3", quant="F32")], n_ctx=256)
    svc = Service(Settings(n_threads=1, ram_budget="64MB", keep_alive_s=0),
                  catalog=load_catalog(extra=[tmp_path / "models.toml"]), universe=universe,
                  log=RequestLog(tmp_path / "near.db"), client="near")
    yield svc
    svc.close()


def ask(svc, expert, text="hello", n=6):
    return list(svc.chat([{"role": "user", "content": text}], expert, Sampling(max_tokens=n, seed=3,
                                                                                 temperature=0.0)))


def test_a_remote_expert_answers_like_the_same_expert_served_locally(near, far_server):
    _, far = far_server
    events = ask(near, "far-1")
    result = events[-1]
    assert isinstance(result, Result) and result.expert == "far-1"
    assert result.answer == "".join(e.text for e in events if isinstance(e, TextEvent))
    assert result.tokens["completion"] >= 1 and result.tokens["prompt"] > 0
    # the far side really ran it, and its own measurements came back
    far_row = far.log.recent(1)[0]
    assert far_row["expert"] == "tiny-1" and far_row["response"] == result.answer
    assert "reported by the remote server" in result.energy.source
    assert result.energy.joules == pytest.approx(far_row["energy_j"])
    direct = ask(far, "tiny-1")[-1]
    assert direct.answer == result.answer  # greedy, same seed: the same text either way


def test_remote_and_local_experts_serve_side_by_side(near):
    assert ask(near, "tiny-3")[-1].expert == "tiny-3"
    assert ask(near, "far-1")[-1].expert == "far-1"
    rows = near.log.recent(2)
    assert {r["expert"] for r in rows} == {"tiny-3", "far-1"} and all(r["error"] is None for r in rows)


def test_the_remote_context_limit_comes_back_with_token_counts(near):
    with pytest.raises(ContextOverflow) as err:
        ask(near, "far-1", text="x" * 600)
    assert err.value.n_ctx == 256 and err.value.prompt_tokens > 256


def test_a_wrong_key_and_an_unreachable_server_are_clear_errors(near):
    with pytest.raises(RemoteError, match="401"):
        ask(near, "far-nokey")
    with pytest.raises(RemoteError, match="far-down"):
        ask(near, "far-down")
    assert ask(near, "tiny-3")[-1].expert == "tiny-3"  # the local side is unharmed
