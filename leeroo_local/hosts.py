"""The hosts file: other machines that serve experts (`leeroo-local hosts add`), read by the
commands that add them (provision.hosts) and by the runtime that reports their state.

Kept in $LEEROO_HOME/config/hosts.toml.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from . import paths
from .errors import ConfigError, one_line


class Host(BaseModel):
    """One machine, and the catalog entries its models became."""

    name: str = Field(description="Short name: lower case, digits and dashes.")
    url: str = Field(description="Its API root, e.g. http://192.168.1.20:8642/v1.")
    kind: str = Field(description="leeroo (another leeroo-local serve) or openai (an engine).")
    api_key_env: str | None = Field(default=None, description="Variable holding its API key.")
    experts: list[str] = Field(default_factory=list, description="Catalog ids made for it.")


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
