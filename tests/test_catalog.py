"""The shipped catalog and the errors a broken models.toml gets."""

import json

import pytest
from typer.testing import CliRunner

from leeroo_local import paths
from leeroo_local.catalog import HubSource, load_catalog
from leeroo_local.cli import app
from leeroo_local.errors import ConfigError, UnknownExpert, UnknownQuant
from leeroo_local.store.outcomes import load_matrix


def test_shipped_catalog_covers_every_open_model_of_the_data():
    catalog = load_catalog()
    matrix = load_matrix(with_questions=False)
    open_models = {n for n, i in matrix.info.items() if i.kind == "open"}
    assert open_models <= set(catalog.by_column()), open_models - set(catalog.by_column())
    for expert in catalog.experts:
        if isinstance(expert.source, HubSource):
            assert "/" in expert.source.repo
            assert all(q.file.endswith(".gguf") for q in expert.quants)
            assert expert.arch.active_params_b <= expert.arch.params_b


def test_starters_are_present_and_offline():
    catalog = load_catalog()
    base = catalog.get("gemma-3-270m")
    assert base.source.kind == "pypi" and base.quant().size_basis == "exact"
    derived = catalog.get("gemma-3-270m-q4_0")
    assert derived.source.kind == "derived" and derived.source.expert == "gemma-3-270m"


def test_unknown_expert_and_quant_name_the_alternatives():
    catalog = load_catalog()
    with pytest.raises(UnknownExpert, match="gemma-3-270m"):
        catalog.get("gpt-17")
    with pytest.raises(UnknownQuant, match="Q4_K_M"):
        catalog.get("gemma-3-270m").quant("Q9_X")


def test_invalid_toml_names_the_file(tmp_path):
    bad = tmp_path / "models.toml"
    bad.write_text("[[experts]\nid = 1")
    with pytest.raises(ConfigError, match="models.toml: invalid TOML"):
        load_catalog(bad)


def test_wrong_field_names_entry_and_field(tmp_path):
    text = (paths.Path(load_catalog.__code__.co_filename).parent / "models.toml").read_text()
    broken = text.replace("size_bytes = 253113024", "size_bytes = -5", 1)
    bad = tmp_path / "models.toml"
    bad.write_text(broken)
    with pytest.raises(ConfigError) as err:
        load_catalog(bad)
    message = str(err.value)
    assert str(bad) in message and "'gemma-3-270m'" in message and "quants.0.size_bytes" in message


def test_cli_exits_2_on_a_broken_user_catalog():
    (paths.config_dir() / "models.toml").write_text('[[experts]]\nid = "x"\n')
    result = CliRunner().invoke(app, ["experts"], standalone_mode=False)
    from leeroo_local.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["experts"])
    assert exit_info.value.code == 2
    assert result.exception is not None


def test_experts_lists_catalog_and_local_state(tiny_dir):
    from helpers import install_tiny_universe

    install_tiny_universe(tiny_dir)
    result = CliRunner().invoke(app, ["experts", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    by_id = {(r["id"], r["quant"]): r for r in rows}
    assert by_id[("tiny-1", "F32")]["local"] is True
    assert by_id[("llama-3.1-8b-instruct", "Q4_K_M")]["local"] is False
    assert by_id[("gemma-3-270m", "Q4_K_M")]["size_bytes"] == 253113024


def test_every_model_of_the_mixed_task_data_is_one_catalog_expert():
    from leeroo_local.fit.outcome_sources import shipped_folder

    catalog = load_catalog()
    mixed = load_matrix(shipped_folder("llmrouter"), with_questions=False)
    by_column = catalog.by_column()
    assert set(mixed.experts) <= set(by_column), set(mixed.experts) - set(by_column)
    for name, info in mixed.info.items():
        expert = by_column[name]
        assert expert.kind == info.kind, (name, expert.kind, info.kind)
    # one expert whatever source its outcomes come from
    llama = catalog.get("llama-3.1-8b-instruct")
    assert by_column["llama-3.1-8b-instruct"] is by_column["Meta-Llama-3_1-8B-Instruct"] is llama
    assert llama.columns() == ["Meta-Llama-3_1-8B-Instruct", "llama-3.1-8b-instruct"]


def test_hub_experts_name_their_sources_and_open_large_ones_are_marked():
    catalog = load_catalog()
    for e in catalog.experts:
        if isinstance(e.source, HubSource):
            assert e.source.repo in e.notes, f"{e.id}: notes do not name its GGUF repo"
            assert all(q.size_basis in ("exact", "listed", "computed") for q in e.quants)
            if any(q.size_basis == "computed" for q in e.quants):
                assert "computed" in e.notes, f"{e.id}: a computed size is not explained"
            assert "params_b" in e.notes or "parameters" in e.notes.lower(), e.id
        if e.instruct and e.data_column:
            assert e.chat_template or e.remote or e.id in _OLD_ENTRIES, e.id
        big = e.arch.params_b if e.arch else None
        if e.kind == "open-large":
            assert (big is None and e.remote) or big >= 40, e.id
        elif big is not None and e.data_column:
            assert big < 40 or e.id in _OLD_ENTRIES, f"{e.id}: {big}B should be open-large"


# Entries from before the catalog had chat_template and kind (MMLU-Pro's 2024 experts).
_OLD_ENTRIES = {"mistral-7b-instruct-v0.1", "mistral-7b-instruct-v0.2", "mixtral-8x7b-instruct-v0.1",
                "mixtral-8x7b-v0.1", "yi-34b", "yi-6b-chat", "phi-3-mini-4k-instruct",
                "qwen1.5-7b-chat", "command-r-v01", "mathstral-7b-v0.1"}


def test_the_fim_and_embedding_experts_say_what_they_can_do():
    catalog = load_catalog()
    coder = catalog.get("qwen2.5-coder-1.5b-instruct")
    assert "fim" in coder.domains and "<|fim_prefix|>" in coder.notes and coder.instruct
    embed = catalog.get("nomic-embed-text-v1.5")
    assert embed.domains == ["embeddings"] and not embed.instruct
    assert embed.arch.architecture == "nomic-bert"
    assert not coder.data_column and not embed.data_column  # fit never picks them
