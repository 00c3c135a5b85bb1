"""Other machines that serve experts: another `leeroo-local serve`, or a plain OpenAI-compatible
engine (llama-server, Ollama, vLLM). Adding a host asks it which models it serves and writes one
remote catalog entry per model (`HOST.MODEL`, an `openai` source), so that routing, fallback
and `experts` see them like any other expert. A model the local catalog knows keeps its facts
(instruct, outcome-data column), so the routing policy scores it there as here.

Hosts are kept in $LEEROO_HOME/config/hosts.toml.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from .. import paths
from ..catalog import Catalog
from ..errors import ConfigError, LeerooError, UnknownExpert, one_line
from .catalog_edit import add_expert, remove_expert, user_expert_ids

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")


class Host(BaseModel):
    """One machine, and the catalog entries its models became."""

    name: str = Field(description="Short name: lower case, digits and dashes.")
    url: str = Field(description="Its API root, e.g. http://192.168.1.20:8642/v1.")
    kind: str = Field(description="leeroo (another leeroo-local serve) or openai (an engine).")
    api_key_env: str | None = Field(default=None, description="Variable holding its API key.")
    experts: list[str] = Field(default_factory=list, description="Catalog ids made for it.")


class HostState(BaseModel):
    """What a host says now."""

    host: Host
    up: bool
    detail: str = Field(description="ready, loading, or why it cannot be reached.")


def hosts_file() -> Path:
    return paths.config_dir() / "hosts.toml"


def load_hosts() -> list[Host]:
    """The hosts added so far (ConfigError naming the file when it is invalid)."""
    file = hosts_file()
    if not file.exists():
        return []
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
        return [Host(**h) for h in data.get("hosts", [])]
    except (tomllib.TOMLDecodeError, ValidationError, TypeError) as exc:
        detail = one_line(exc, "hosts") if isinstance(exc, ValidationError) else str(exc)
        raise ConfigError(f"{file}: {detail}") from None


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
    entry = {"id": f"{host.name}.{re.sub(r'[^a-z0-9._-]', '-', model.lower())}",
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
