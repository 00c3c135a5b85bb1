"""Sampling defaults (llama.cpp's, overridable in config.toml and per command), and where a base
model's answer ends."""

import json
import re
from collections import Counter

import pytest
from typer.testing import CliRunner

from helpers import install_tiny_universe
from leeroo_local import paths
from leeroo_local.backends.llama_cpp import _blank_line_after_text
from leeroo_local.cli import app, main
from leeroo_local.errors import ConfigError
from leeroo_local.settings import load_settings


def test_defaults_are_llama_cpps_and_config_toml_overrides_them():
    s = load_settings().sampling
    assert (s.top_k, s.top_p, s.min_p, s.repeat_last_n, s.repeat_penalty) == (40, 0.95, 0.05, 64, 1.1)
    paths.config_dir().mkdir(parents=True, exist_ok=True)
    (paths.config_dir() / "config.toml").write_text("[sampling]\nrepeat_penalty = 1.3\ntop_k = 20\n")
    s = load_settings().sampling
    assert (s.repeat_penalty, s.top_k, s.min_p) == (1.3, 20, 0.05)


def test_a_bad_sampling_setting_names_the_field():
    paths.config_dir().mkdir(parents=True, exist_ok=True)
    (paths.config_dir() / "config.toml").write_text("[sampling]\nmin_p = 3\n")
    with pytest.raises(ConfigError, match="sampling.min_p"):
        load_settings()


@pytest.mark.slow
def test_run_takes_the_sampling_flags(tiny_dir):
    install_tiny_universe(tiny_dir)

    def answer(*flags):
        result = CliRunner().invoke(app, ["run", "hello", "--json", "-n", "24", "--seed", "3",
                                          "--temperature", "0", "--expert", "tiny-1", *flags])
        assert result.exit_code == 0, result.output
        return json.loads(result.output)["answer"]

    default = answer()
    assert answer("--repeat-penalty", "1.1", "--repeat-last-n", "64") == default
    assert answer("--repeat-penalty", "1.0") != default


def test_an_out_of_range_flag_is_a_usage_error(tiny_dir, capsys):
    install_tiny_universe(tiny_dir)
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "hi", "--expert", "tiny-1", "--min-p", "7"])
    assert exit_info.value.code == 2


@pytest.mark.parametrize("text, answered, cut", [
    ("Paris.\n\nThe next", False, 6),
    ("\n\nParis.\n\nMore", False, 8),  # a blank line before any text does not end the answer
    ("\n\n", False, None),
    ("\n\n", True, 0),
    ("one line\nanother", False, None),
    (" red, blue and yellow. \n \n red, blue", False, 23),  # a line of spaces is blank too
    ("Paris.\n\t \nMore", False, 6),
    (" \n \nParis.", False, None),
])
def test_a_blank_line_after_text_ends_a_base_models_answer(text, answered, cut):
    assert _blank_line_after_text(text, answered) == cut


@pytest.mark.gemma
def test_the_readme_prompt_gets_a_short_answer_that_does_not_loop(gemma_path):
    """The README's first command, on the starter: no sentence three times, ended by the model."""
    for seed in (1, 2, 3):
        result = CliRunner().invoke(app, ["run", "The three primary colours are", "--json",
                                          "--seed", str(seed)])
        assert result.exit_code == 0, result.output
        data = json.loads(result.output)
        sentences = [s.strip().lower() for s in re.split(r"[.!?\n]+", data["answer"]) if s.strip()]
        assert sentences and max(Counter(sentences).values()) < 3, data["answer"]
        assert data["finish_reason"] == "stop" and data["tokens"]["completion"] < 256


def test_help_names_the_config_section_of_each_default():
    result = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "Default: 0.95 (config.toml [sampling])." in result.output
