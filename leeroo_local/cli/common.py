"""Helpers shared by the command modules: JSON output and catalog loading with user entries."""

from __future__ import annotations

import json
from typing import Any

import typer

from ..catalog import Catalog, load_user_catalog


def echo_json(data: Any) -> None:
    """Print one JSON document (pydantic models and paths made plain)."""
    typer.echo(json.dumps(data, indent=2, default=str))


def user_catalog() -> Catalog:
    """The shipped catalog plus the user's own models.toml, when there is one."""
    return load_user_catalog()
