"""[[quants]] tables: one more quantization of an existing expert, validated like the rest."""

from __future__ import annotations

import pytest

from leeroo_local import paths
from leeroo_local.catalog import (
    QuantEntry, load_catalog, load_user_catalog, save_user_quant, user_catalog_files,
)
from leeroo_local.errors import ConfigError, DownloadError
from leeroo_local.locate import local_path
from leeroo_local.provision.ensure import ensure_local


def entry(**kw) -> dict:
    base = dict(expert="gemma-3-270m", type="Q3_K_S", file="g.gguf", path="/tmp/nowhere/g.gguf",
                size_bytes=123, size_basis="exact")
    return {**base, **kw}


def toml(*entries: dict) -> str:
    out = []
    for e in entries:
        out.append("[[quants]]\n" + "".join(
            f"{k} = {v!r}\n".replace("'", '"') if isinstance(v, str) else f"{k} = {v}\n"
            for k, v in e.items()))
    return "\n".join(out)


def test_a_quants_table_adds_to_a_shipped_expert(tmp_path):
    f = tmp_path / "q.toml"
    f.write_text(toml(entry()))
    expert = load_catalog(extra=[f]).get("gemma-3-270m")
    assert [q.type for q in expert.quants] == ["Q4_K_M", "Q3_K_S"]
    q = expert.quant("q3_k_s")
    assert q.path == "/tmp/nowhere/g.gguf" and q.size_basis == "exact"
    assert expert.default_quant == "Q4_K_M"  # the shipped facts are untouched


@pytest.mark.parametrize("bad, message", [
    (entry(expert="nobody"), "quants entry 1 (nobody Q3_K_S): unknown expert 'nobody'"),
    (entry(type="Q4_K_M"), "quants entry 1 (gemma-3-270m Q4_K_M): gemma-3-270m already offers Q4_K_M"),
    (entry(path="relative/g.gguf"), "quants entry 1 (gemma-3-270m Q3_K_S), field (entry)"),
    (entry(size_bytes=-1), "quants entry 1 (gemma-3-270m Q3_K_S), field size_bytes"),
    (entry(colour="blue"), "field colour"),
])
def test_bad_entries_name_file_entry_and_field(tmp_path, bad, message):
    f = tmp_path / "q.toml"
    f.write_text(toml(bad))
    with pytest.raises(ConfigError) as err:
        load_catalog(extra=[f])
    assert str(f) in str(err.value) and message in str(err.value)


def test_two_entries_of_one_type_are_refused(tmp_path):
    f = tmp_path / "q.toml"
    f.write_text(toml(entry(), entry(file="h.gguf")))
    with pytest.raises(ConfigError, match="quants entry 2 .*already offers Q3_K_S"):
        load_catalog(extra=[f])


def test_save_user_quant_replaces_its_own_entry_and_keeps_the_file_on_error(tmp_path):
    models, quants = user_catalog_files()
    assert quants.parent == paths.home() / "config"
    save_user_quant(QuantEntry.model_validate(entry()))
    save_user_quant(QuantEntry.model_validate(entry(size_bytes=456)))
    save_user_quant(QuantEntry.model_validate(entry(type="Q2_K")))
    expert = load_user_catalog().get("gemma-3-270m")
    assert [(q.type, q.size_bytes) for q in expert.quants] == [("Q4_K_M", 253113024),
                                                              ("Q3_K_S", 456), ("Q2_K", 123)]
    before = quants.read_text()
    with pytest.raises(ConfigError, match="unknown expert"):
        save_user_quant(QuantEntry.model_validate(entry(expert="nobody")))
    assert quants.read_text() == before and not list(quants.parent.glob("*.partial"))


def test_a_registered_file_that_disappeared_is_a_clear_error(tmp_path):
    gguf = tmp_path / "g.gguf"
    gguf.write_bytes(b"GGUF" + bytes(119))  # the 123 bytes the entry records
    save_user_quant(QuantEntry.model_validate(entry(path=str(gguf))))
    catalog = load_user_catalog()
    expert = catalog.get("gemma-3-270m")
    assert local_path(expert, expert.quant("Q3_K_S")) == gguf
    gguf.unlink()
    assert local_path(expert, expert.quant("Q3_K_S")) is None
    with pytest.raises(DownloadError, match="does not exist any more"):
        ensure_local(catalog, expert, expert.quant("Q3_K_S"))


def test_remote_experts_take_no_quants(tmp_path):
    models, _ = user_catalog_files()
    models.parent.mkdir(parents=True, exist_ok=True)
    models.write_text('[[experts]]\nid = "far"\nname = "Far"\nlicense = "x"\ninstruct = true\n'
                      'source = { kind = "openai", base_url = "http://127.0.0.1:9/v1", model = "m" }\n'
                      + toml(entry(expert="far")))
    with pytest.raises(ConfigError, match="far is a remote expert"):
        load_user_catalog()
