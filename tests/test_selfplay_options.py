"""The selfplay command's options are SelfPlayConfig's fields: default, description, limits."""

from __future__ import annotations

import typer

from leeroo_local.cli import app
from leeroo_local.selfplay.config import EVALUATORS, SelfPlayConfig


def test_selfplay_options_are_the_config_fields():
    command = next(c for c in typer.main.get_command(app).commands.values()
                   if c.name == "selfplay")
    params = {p.name: p for p in command.params}
    for name, field in SelfPlayConfig.model_fields.items():
        if name in params:
            assert params[name].default == field.default, name
            assert field.description in params[name].help, name
    assert (params["epsilon"].min, params["epsilon"].max) == (0.0, 1.0)
    assert params["questions"].min == 1 and params["validation"].min == 0
    assert EVALUATORS == ("loglik", "extract", "judge")
