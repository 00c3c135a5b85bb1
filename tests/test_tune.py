"""`leeroo-local tune` measures every thread count on a tiny real expert and keeps the fastest in
config.toml without losing what the file held."""

from __future__ import annotations

import json
import os

from typer.testing import CliRunner

from helpers import install_tiny_universe
from leeroo_local import paths
from leeroo_local.cli import app
from leeroo_local.settings import load_settings


def test_tune_measures_each_count_and_saves_the_fastest(tiny_dir):
    install_tiny_universe(tiny_dir)
    config = paths.config_dir() / "config.toml"
    config.write_text('n_threads = 7\nkeep_alive_s = 42\n\n[sampling]\ntemperature = 0.3\n')
    out = CliRunner().invoke(app, ["tune", "--rounds", "1", "--tokens", "8", "--save", "--json"])
    assert out.exit_code == 0, out.output
    tuning = json.loads(out.output)
    assert [c["threads"] for c in tuning["candidates"]] == list(range(1, os.cpu_count() + 1))
    assert all(c["decode_tok_s"] > 0 and c["prompt_tok_s"] > 0 for c in tuning["candidates"])
    best = max(tuning["candidates"], key=lambda c: c["decode_tok_s"])["threads"]
    settings = load_settings()
    assert settings.n_threads == tuning["n_threads"] == best
    assert settings.n_threads_batch == tuning["n_threads_batch"]
    assert settings.keep_alive_s == 42 and settings.sampling.temperature == 0.3  # kept
    assert config.read_text().count("n_threads =") == 1


def test_tune_without_a_local_expert_is_one_line(tiny_dir):
    (paths.config_dir() / "universe.json").write_text(json.dumps({"members": [
        {"expert": "gemma-3-270m", "quant": "Q4_K_M"}]}))
    (paths.config_dir() / "models.toml").write_text("")
    out = CliRunner().invoke(app, ["tune", "--expert", "nope"])
    assert out.exit_code != 0
