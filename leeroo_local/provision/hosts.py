"""Other machines that serve experts: another `leeroo-local serve`, or a plain OpenAI-compatible
engine (llama-server, Ollama, vLLM). Adding a host asks it which models it serves and writes one
remote catalog entry per model (`HOST.MODEL`, an `openai` source), so that routing, fallback
and `experts` see them like any other expert. A model the local catalog knows keeps its facts
(instruct, outcome-data column), so the routing policy scores it there as here.

Hosts are kept in $LEEROO_HOME/config/hosts.toml (leeroo_local.hosts reads it).
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from pydantic import BaseModel, Field

from .. import paths
from ..catalog import Catalog
from ..errors import ConfigError, LeerooError, UnknownExpert
from ..hosts import Host, hosts_file, load_hosts
from ..universe import Member, Universe
from .catalog_edit import add_expert, remove_expert, user_expert_ids

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")


class HostState(BaseModel):
    """What a host says now."""

    host: Host
    up: bool
    detail: str = Field(description="ready, loading, or why it cannot be reached.")
    checked_at: float = Field(default_factory=time.time, description="Unix time of the check.")


def _save(hosts: list[Host]) -> None:
    lines = ["# Machines that serve experts (leeroo-local hosts add/remove).\n"]
    for h in hosts:
        lines.append("\n[[hosts]]\n")
        lines.append(f'name = "{h.name}"\nurl = "{h.url}"\nkind = "{h.kind}"\n')
        if h.api_key_env:
            lines.append(f'api_key_env = "{h.api_key_env}"\n')
        lines.append("experts = [" + ", ".join(f'"{e}"' for e in h.experts) + "]\n")
    file = hosts_file()
    tmp = file.with_name(file.name + ".tmp")
    tmp.write_text("".join(lines), encoding="utf-8")
    tmp.replace(file)


def _headers(api_key_env: str | None) -> dict[str, str]:
    if api_key_env and os.environ.get(api_key_env):
        return {"Authorization": f"Bearer {os.environ[api_key_env]}"}
    return {}


def probe(url: str, api_key_env: str | None = None, timeout_s: float = 10.0) -> tuple[str, list[str]]:
    """(kind, model ids) a host serves, from its GET /models: another leeroo-local lists `auto`
    with the members it routes among; an engine, its models."""
    import httpx

    try:
        resp = httpx.get(url.rstrip("/") + "/models", headers=_headers(api_key_env),
                         timeout=timeout_s)
        resp.raise_for_status()
        cards = resp.json()["data"]
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        raise LeerooError(f"{url}: not an OpenAI-compatible server that lists its models "
                          f"({type(exc).__name__}: {exc})") from None
    auto = next((c for c in cards if c.get("id") == "auto" and "leeroo" in c), None)
    if auto is not None:
        return "leeroo", list(auto["leeroo"].get("members") or [])
    return "openai", [c["id"] for c in cards if isinstance(c.get("id"), str)]


def _entry(host: Host, model: str, catalog: Catalog) -> dict:
    """A remote catalog entry for `model` on `host`, with the local catalog's facts if it has
    the model."""
    known = next((e for e in catalog.experts if e.id == model), None)
    source = {"kind": "openai", "base_url": host.url, "model": model}
    if host.api_key_env:
        source["api_key_env"] = host.api_key_env
    entry = {"id": remote_id(host, model),
             "name": f"{known.name if known else model} on {host.name}",
             "license": known.license if known else "unknown",
             "instruct": known.instruct if known else True,
             "source": source, "notes": f"served by host {host.name} ({host.kind})"}
    if known and known.data_column:
        entry["data_column"] = known.data_column
    if known and known.data_aliases:
        entry["data_aliases"] = list(known.data_aliases)
    return entry


def add_host(name: str, url: str, catalog: Catalog, api_key_env: str | None = None) -> Host:
    """Probe the host, then write its models as remote experts and the host itself."""
    if not _NAME.match(name):
        raise ConfigError(f"host name {name!r}: use lower case letters, digits and dashes")
    hosts = load_hosts()
    if any(h.name == name for h in hosts):
        raise ConfigError(f"host {name!r} is already added; remove it first")
    kind, models = probe(url, api_key_env)
    if not models:
        raise LeerooError(f"{url} serves no model")
    host = Host(name=name, url=url.rstrip("/"), kind=kind, api_key_env=api_key_env)
    taken = set(user_expert_ids()) | {e.id for e in catalog.experts}
    for model in models:
        entry = _entry(host, model, catalog)
        if entry["id"] in taken:
            continue
        add_expert(entry, f"host {name}")
        host.experts.append(entry["id"])
    _save(hosts + [host])
    return host


def remove_host(name: str) -> Host:
    """Forget a host and the catalog entries its models became."""
    hosts = load_hosts()
    host = next((h for h in hosts if h.name == name), None)
    if host is None:
        raise UnknownExpert(f"no host {name!r}; `leeroo-local hosts list` shows them")
    for expert_id in host.experts:
        try:
            remove_expert(expert_id)
        except UnknownExpert:
            continue  # already removed by hand
    _save([h for h in hosts if h.name != name])
    return host


def host_states(timeout_s: float = 3.0) -> list[HostState]:
    """Each host's health now (its /health for another leeroo-local, else its model list)."""
    import httpx

    out = []
    for host in load_hosts():
        root = host.url.removesuffix("/v1")
        try:
            if host.kind == "leeroo":
                status = httpx.get(root + "/health", timeout=timeout_s).json().get("status", "?")
            else:
                httpx.get(host.url + "/models", headers=_headers(host.api_key_env),
                          timeout=timeout_s).raise_for_status()
                status = "ready"
            out.append(HostState(host=host, up=True, detail=status))
        except (httpx.HTTPError, ValueError) as exc:
            out.append(HostState(host=host, up=False, detail=f"{type(exc).__name__}: {exc}"))
    return out


def remote_id(host: Host, model: str) -> str:
    """The catalog id of `model` served by `host` (what `add_host` writes)."""
    return f"{host.name}.{re.sub(r'[^a-z0-9._-]', '-', model.lower())}"


def bind_hosts(universe: Universe, catalog: Catalog) -> tuple[Universe, dict[str, Universe]]:
    """A universe `fit --host` placed, made runnable here: each member another host serves
    becomes that host's remote catalog entry (written when the host did not list the expert
    yet), keeping its host and quantization. Also returns, per other host, the universe it must
    serve (its members, local there). ConfigError when a host was never added."""
    hosts = {h.name: h for h in load_hosts()}
    missing = sorted({m.host for m in universe.members if m.host and m.host not in hosts})
    if missing:
        raise ConfigError(f"host(s) {', '.join(missing)} not added: `leeroo-local hosts add NAME "
                          "URL` first (the universe must say where each expert is served)")
    members: list[Member] = []
    theirs: dict[str, list[Member]] = {}
    changed: dict[str, Host] = {}
    known = {e.id for e in catalog.experts} | set(user_expert_ids())
    for m in universe.members:
        if not m.host:
            members.append(m)
            continue
        host = changed.get(m.host) or hosts[m.host].model_copy(deep=True)
        entry = _entry(host, m.expert, catalog)
        if entry["id"] not in known:
            add_expert(entry, f"host {host.name}")
            known.add(entry["id"])
            host.experts.append(entry["id"])
            changed[host.name] = host
        members.append(m.model_copy(update={"expert": entry["id"]}))
        theirs.setdefault(m.host, []).append(Member(expert=m.expert, quant=m.quant,
                                                    memory_bytes=m.memory_bytes))
    if changed:
        _save([changed.get(h.name, h) for h in hosts.values()])
    bound = universe.model_copy(update={"members": members})
    return bound, {name: universe.model_copy(update={"members": ms}) for name, ms in theirs.items()}


def save_placed(universe: Universe, catalog: Catalog) -> tuple[Path, dict[str, Path]]:
    """Save a universe `fit --host` placed: this machine's (spanning hosts, bind_hosts) as the
    universe, and each other host's next to it as universe.HOST.json, to copy there as its
    universe.json."""
    from ..universe import save_universe

    bound, theirs = bind_hosts(universe, catalog)
    folder = paths.universe_path().parent
    others = {name: save_universe(u, folder / f"universe.{name}.json") for name, u in theirs.items()}
    return save_universe(bound), others
