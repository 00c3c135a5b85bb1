"""Helpers shared by the command modules: JSON output, catalog loading with user entries, and the
sampling options of `run` and `chat` (derived from the settings model, so help and limits match
config.toml's `[sampling]`)."""

from __future__ import annotations

import json
from typing import Annotated, Any, Optional

import typer

from ..catalog import Catalog, load_user_catalog
from ..settings import SamplingDefaults


def _sampling_option(name: str, *flags: str):
    field = SamplingDefaults.model_fields[name]
    limits = {}
    for rule in field.metadata:
        for attr, key in (("ge", "min"), ("gt", "min"), ("le", "max")):
            if getattr(rule, attr, None) is not None:
                limits[key] = getattr(rule, attr)
    return typer.Option(*flags, help=f"{field.description} Default: {field.default} "
                                     "(config.toml [sampling]).", show_default=False, **limits)


Temperature = Annotated[Optional[float], _sampling_option("temperature", "--temperature", "-t")]
TopP = Annotated[Optional[float], _sampling_option("top_p", "--top-p")]
TopK = Annotated[Optional[int], _sampling_option("top_k", "--top-k")]
MinP = Annotated[Optional[float], _sampling_option("min_p", "--min-p")]
RepeatPenalty = Annotated[Optional[float], _sampling_option("repeat_penalty", "--repeat-penalty")]
RepeatLastN = Annotated[Optional[int], _sampling_option("repeat_last_n", "--repeat-last-n")]


def echo_json(data: Any) -> None:
    """Print one JSON document (pydantic models and paths made plain)."""
    typer.echo(json.dumps(data, indent=2, default=str))


def user_catalog() -> Catalog:
    """The shipped catalog plus the user's own models.toml, when there is one."""
    return load_user_catalog()
