"""Helpers shared by the command modules: JSON output, catalog loading with user entries, and
options derived from the pydantic models they mirror (the sampling options of `run` and `chat`
from the settings model, so help and limits match config.toml's `[sampling]`; self-play's from
its config), so a default, a description or a limit is written once."""

from __future__ import annotations

import json
from typing import Annotated, Any, Optional, get_args

import typer
from pydantic import BaseModel

from ..catalog import Catalog, load_user_catalog
from ..settings import SamplingDefaults


def model_option(model: type[BaseModel], name: str, *flags: str, note: str = "", **kwargs):
    """A typer option for the field `name` of `model`: its description (and `note`) as help,
    its bounds as limits, and, unless `kwargs` give one, its default (`default=...` for an
    option declared with Annotated, whose default is the parameter's)."""
    field = model.model_fields[name]
    limits = {}
    for rule in field.metadata:
        for attr, key in (("ge", "min"), ("gt", "min"), ("le", "max")):
            if getattr(rule, attr, None) is not None:
                limits[key] = getattr(rule, attr)
        if isinstance(getattr(rule, "gt", None), int):
            limits["min"] = rule.gt + 1  # a whole number above gt (typer's bounds are closed)
    default = kwargs.pop("default", field.default)
    return typer.Option(default, *flags, help=f"{field.description}{note}", **limits, **kwargs)


def check_choice(model: type[BaseModel], name: str, value: str, flag: str) -> None:
    """A usage error unless `value` is one of the Literal choices of the field `name`."""
    allowed = get_args(model.model_fields[name].annotation)
    if value not in allowed:
        raise typer.BadParameter(f"use one of {', '.join(allowed)}", param_hint=flag)


def _sampling_option(name: str, *flags: str):
    default = SamplingDefaults.model_fields[name].default
    return model_option(SamplingDefaults, name, *flags, default=...,
                        note=f" Default: {default} (config.toml \\[sampling]).", show_default=False)


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


def provision_at_start(service, expert: str = "auto", quiet: bool = False) -> None:
    """Make the files `service` will answer from present before the first prompt (the expert
    named, or every universe member for auto), saying so on stderr unless `quiet`: requests
    never fetch."""
    from ..provision.ensure import ensure_all

    if expert == "auto":
        wanted = [(m.expert, m.quant) for m in service.universe.members]
    else:
        wanted = [(expert, service.route("", expert).quant)]
    ensure_all(service.catalog, wanted, say=None if quiet else lambda line: typer.echo(line, err=True))
