"""Hosts: another leeroo-local `serve` on 127.0.0.1 added as a host becomes remote experts that
keep the local catalog's facts; `auto` can route to them, `list` says whether each answers, and
`remove` takes them away again."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from helpers import tiny_expert_toml
from leeroo_local import paths
from leeroo_local.catalog import load_catalog, load_user_catalog
from leeroo_local.cli import app
from leeroo_local.runtime.service import Service
from leeroo_local.server import BackgroundServer, ServerSettings, create_app
from leeroo_local.settings import Settings
from leeroo_local.store.requests import RequestLog
from leeroo_local.universe import Member, Universe


@pytest.fixture(scope="module")
def far(tmp_path_factory, tiny_dir):
    tmp = tmp_path_factory.mktemp("host")
    (tmp / "models.toml").write_text(tiny_expert_toml("tiny-1", tiny_dir, "tiny-1.gguf")
                                     + tiny_expert_toml("tiny-2", tiny_dir, "tiny-2.gguf"))
    svc = Service(Settings(n_threads=1, keep_alive_s=600),
                  catalog=load_catalog(extra=[tmp / "models.toml"]),
                  universe=Universe(members=[Member(expert=i, quant="F32")
                                             for i in ("tiny-1", "tiny-2")], n_ctx=256),
                  log=RequestLog(tmp / "far.db"), client="far")
    settings = ServerSettings(port=0)
    server = BackgroundServer(create_app(svc, settings), settings).start()
    yield server.url + "/v1"
    server.stop()
    svc.close()


def cli(*args):
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_a_host_is_added_listed_used_and_removed(far, tiny_dir):
    added = json.loads(cli("hosts", "add", "desk", far, "--json"))
    assert added["kind"] == "leeroo" and added["experts"] == ["desk.tiny-1", "desk.tiny-2"]
    catalog = load_user_catalog()
    remote = catalog.get("desk.tiny-1")
    assert remote.remote and remote.source.model == "tiny-1"
    assert remote.source.base_url == far

    listed = json.loads(cli("hosts", "list", "--json"))
    assert [(s["host"]["name"], s["up"], s["detail"]) for s in listed] == [("desk", True, "ready")]
    rows = {r["id"]: r for r in json.loads(cli("experts", "--json"))}
    assert rows["desk.tiny-1"]["host"] == "desk" and rows["desk.tiny-1"]["host_state"] == "up"
    assert rows["desk.tiny-1"]["host_url"] == far and rows["desk.tiny-1"]["local"] is False
    assert "host desk up at" in cli("experts")

    # The far side answers through the remote expert.
    svc = Service(Settings(), catalog=catalog,
                  universe=Universe(members=[Member(expert="desk.tiny-2", quant=remote.default_quant)]),
                  log=RequestLog(paths.db_path()))
    try:
        events = list(svc.chat([{"role": "user", "content": "hi"}], "desk.tiny-2",
                               svc.sampling(max_tokens=2)))
        assert events[-1].expert == "desk.tiny-2" and events[-1].tokens["completion"] >= 1
        (state,) = svc.hosts(probe=False)  # known from the answer, no probe needed
        assert (state["name"], state["state"], state["members"]) == ("desk", "up", ["desk.tiny-2"])
        assert state["url"] == far and "answered" in state["detail"]
    finally:
        svc.close()

    assert "removed desk and 2 experts" in cli("hosts", "remove", "desk")
    assert "desk.tiny-1" not in {e.id for e in load_user_catalog().experts}
    assert json.loads(cli("hosts", "list", "--json")) == []


def test_a_host_that_stops_answering_is_down_after_a_probe(tmp_path):
    from leeroo_local.provision.hosts import _save
    from leeroo_local.hosts import Host

    _save([Host(name="gone", url="http://127.0.0.1:9/v1", kind="leeroo")])
    svc = Service(Settings(), universe=Universe(members=[Member(expert="gemma-3-270m",
                                                                quant="Q4_K_M")]))
    try:
        assert svc.hosts(probe=False)[0]["state"] == "unknown"
        (state,) = svc.hosts()
        assert state["state"] == "down" and state["last_check"] and state["members"] == []
    finally:
        svc.close()


def test_a_host_that_is_down_or_not_an_api_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(app, ["hosts", "add", "gone", "http://127.0.0.1:9/v1"])
    assert result.exit_code != 0
    from leeroo_local.cli import main

    with pytest.raises(SystemExit) as info:
        main(["hosts", "add", "Bad Name", "http://127.0.0.1:9/v1"])
    assert info.value.code == 2


def test_health_shows_hosts_addresses_only_to_the_keys_holders(tmp_path):
    """/health needs no key (a probe must reach it), but where the server has one, a caller
    without it learns each host's name and state, not its address nor what it last said, and
    never makes the server call out to a host."""
    import httpx

    from leeroo_local.hosts import Host
    from leeroo_local.provision.hosts import _save

    _save([Host(name="gone", url="http://127.0.0.1:9/v1", kind="leeroo")])
    svc = Service(Settings(), universe=Universe(members=[Member(expert="gemma-3-270m",
                                                                quant="Q4_K_M")]))
    settings = ServerSettings(port=0, api_key="s3cret-key")
    server = BackgroundServer(create_app(svc, settings), settings).start()
    try:
        anonymous = httpx.get(server.url + "/health", timeout=30).json()["hosts"]
        assert anonymous == [{"name": "gone", "state": "unknown"}]  # not probed for a stranger
        held = httpx.get(server.url + "/health", headers={"x-api-key": "s3cret-key"},
                         timeout=30).json()["hosts"]
        assert held[0]["url"] == "http://127.0.0.1:9/v1" and held[0]["state"] == "down"
    finally:
        server.stop()
        svc.close()
