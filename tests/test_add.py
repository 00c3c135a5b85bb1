"""`leeroo-local add` and `remove`: a hub repository (listing and header by range requests, against
the fake hub), a local file and an Ollama store (registered in place), and the clear errors."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from fake_hub import FakeHub
from helpers import install_tiny_universe
from gguf import GGUFWriter
from tiny_gguf import write_tiny_llama
from typer.testing import CliRunner

from leeroo_local import paths
from leeroo_local.catalog import load_user_catalog
from leeroo_local.cli import app, main
from leeroo_local.gguf_info import read_gguf
from leeroo_local.memory import shape_from_gguf

runner = CliRunner()
REPO = "fake-org/gemma-3-270m-it-GGUF"


@pytest.fixture
def hub(monkeypatch):
    fake = FakeHub().start()
    monkeypatch.setenv("HF_ENDPOINT", fake.url)
    yield fake
    fake.stop()


def _add(*args: str) -> dict:
    result = runner.invoke(app, ["add", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _fails(args: list[str], code: int, capsys) -> str:
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == code
    return capsys.readouterr().err


def test_a_hub_repository_is_listed_by_quant_and_its_header_read_by_range(hub, gemma_path):
    size = gemma_path.stat().st_size
    hub.add_file(REPO, "gemma-3-270m-it-Q4_K_M.gguf", gemma_path)
    hub.add(REPO, "Q8_0/gemma-3-270m-it-Q8_0-00001-of-00002.gguf", b"x" * 1000)
    hub.add(REPO, "Q8_0/gemma-3-270m-it-Q8_0-00002-of-00002.gguf", b"y" * 500)
    hub.add(REPO, "mmproj-gemma-F16.gguf", b"z" * 10)
    hub.extra[REPO] = ["README.md", ".gitattributes"]

    added = _add(f"hf:{REPO}")
    # the header came by range requests: more than one (262k-token vocabulary), < 5% of the file
    assert 0 < hub.served < 0.05 * size and added["header_bytes"] == hub.served
    ranges = [r.range for r in hub.requests if r.server == "cdn"]
    assert len(ranges) > 1 and all(r and r.startswith("bytes=") and not r.endswith("-")
                                   for r in ranges)
    assert added["id"] == "gemma-3-270m-it" and added["default_quant"] == "Q4_K_M"
    assert {q["type"]: q["size_bytes"] for q in added["quants"]} == {"Q4_K_M": size, "Q8_0": 1500}
    assert any("mmproj" in s for s in added["skipped"])
    assert not any(Path(paths.home()).rglob("*.gguf"))  # nothing was downloaded

    local = shape_from_gguf(read_gguf(gemma_path))
    arch = added["arch"]
    assert (arch["architecture"], arch["n_vocab"], arch["n_layers"], arch["n_ctx_train"]) == (
        "gemma3", local.n_vocab, local.n_layers, local.n_ctx_train)
    assert local.n_vocab == 262144 and arch["swa_layers"] == local.swa_layers
    assert "GGUF header of hf:" in added["provenance"]["arch"]
    assert "hub tree listing" in added["provenance"]["quants"]

    # in the catalog with exact sizes and the sha256 the hub lists, so fit can place it now
    expert = load_user_catalog().get("gemma-3-270m-it")
    q4 = expert.quant("Q4_K_M")
    assert q4.size_basis == "exact" and q4.sha256 == hashlib.sha256(gemma_path.read_bytes()).hexdigest()
    assert expert.quant("Q8_0").file == "Q8_0/gemma-3-270m-it-Q8_0-00001-of-00002.gguf"
    listed = runner.invoke(app, ["experts", "--json"])
    assert {(r["id"], r["quant"]) for r in json.loads(listed.stdout)} >= {
        ("gemma-3-270m-it", "Q4_K_M"), ("gemma-3-270m-it", "Q8_0")}

    # the same source again is the same entry; another one under this id is refused
    again = _add(f"hf:{REPO}")
    assert again["reused"] and again["id"] == added["id"]
    removed = runner.invoke(app, ["remove", "gemma-3-270m-it", "--json"])
    assert removed.exit_code == 0, removed.output
    assert "gemma-3-270m-it" not in load_user_catalog().ids()


def test_a_single_file_of_a_repository_and_the_hub_errors(hub, tmp_path, capsys):
    tiny = write_tiny_llama(tmp_path / "t.gguf", seed=1).read_bytes()
    hub.add("org/tiny-GGUF", "tiny-F32.gguf", tiny)
    hub.add("org/tiny-GGUF", "tiny-Q8_0.gguf", tiny[:5000] + b"\0" * 10)
    added = _add("hf:org/tiny-GGUF/tiny-F32.gguf", "--id", "tiny")
    assert [q["type"] for q in added["quants"]] == ["F32"] and added["arch"]["n_vocab"] == 259

    # pulled, then removed with its files: the snapshot link and the blob of the HF cache
    pulled = runner.invoke(app, ["pull", "tiny", "--json"])
    assert pulled.exit_code == 0, pulled.output
    link = Path(json.loads(pulled.stdout)["path"])
    blob = link.resolve()
    assert blob.read_bytes() == tiny
    err = _fails(["add", "hf:org/tiny-GGUF", "--id", "tiny", "--quant", "F32"], 2, capsys)
    assert "an expert 'tiny' exists already" in err and "--id" in err

    # a truncated header, a file that is not GGUF, an unknown architecture
    err = _fails(["add", "hf:org/tiny-GGUF/tiny-Q8_0.gguf"], 2, capsys)
    assert "truncated" in err or "tensor data needs" in err
    hub.add("org/junk-GGUF", "junk-Q4_0.gguf", b"<html>not a model</html>" * 100)
    assert "not a GGUF file (bad magic" in _fails(["add", "hf:org/junk-GGUF"], 2, capsys)
    w = GGUFWriter(str(tmp_path / "alien.gguf"), "notanarch")
    w.add_block_count(1)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    hub.add("org/alien-GGUF", "alien-F16.gguf", (tmp_path / "alien.gguf").read_bytes())
    err = _fails(["add", "hf:org/alien-GGUF"], 2, capsys)
    assert "architecture 'notanarch' is not one llama.cpp can load" in err

    hub.extra["org/safetensors-only"] = ["config.json", "model.safetensors"]
    err = _fails(["add", "hf:org/safetensors-only"], 4, capsys)
    assert "has no GGUF file" in err and "none of them .gguf" in err
    assert "was not found" in _fails(["add", "hf:org/nothing-here"], 4, capsys)
    assert "write hf:OWNER/REPO" in _fails(["add", "hf:justone"], 2, capsys)
    assert not (paths.config_dir() / "models.toml.partial").exists()
    assert [e for e in load_user_catalog().ids() if e.startswith("tiny")] == ["tiny"]
    removed = runner.invoke(app, ["remove", "tiny", "--delete-files", "--json"])
    assert removed.exit_code == 0, removed.output
    assert set(json.loads(removed.stdout)["deleted"]) == {str(link), str(blob)}
    assert not link.exists() and not blob.exists()


def test_no_network_and_no_local_copy_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    err = _fails(["add", "hf:org/tiny-GGUF"], 4, capsys)
    assert "could not reach" in err and "no copy of org/tiny-GGUF in the Hugging Face cache" in err


def test_offline_a_hub_repository_in_the_hugging_face_cache_is_read_there(tiny_dir, monkeypatch):
    from huggingface_hub import constants

    snap = Path(constants.HF_HUB_CACHE) / "models--org--cached-GGUF" / "snapshots" / ("c" * 40)
    snap.mkdir(parents=True)
    shutil.copyfile(tiny_dir / "tiny-1.gguf", snap / "cached-F32.gguf")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    added = _add("hf:org/cached-GGUF")
    assert added["id"] == "cached" and added["header_bytes"] is None
    assert added["quants"][0]["size_bytes"] == (tiny_dir / "tiny-1.gguf").stat().st_size
    assert "Hugging Face cache" in added["provenance"]["quants"]
    expert = load_user_catalog().get("cached")
    assert expert.source.repo == "org/cached-GGUF" and expert.quants[0].file == "cached-F32.gguf"


def test_a_local_file_is_registered_in_place_and_removed(tiny_dir, tmp_path, capsys):
    path = shutil.copyfile(tiny_dir / "tiny-2.gguf", tmp_path / "tiny-2.gguf")
    added = _add(str(path))
    assert added["id"] == "tiny-2" and added["kind"] == "local"
    expert = load_user_catalog().get("tiny-2")
    assert expert.source.folder == str(tmp_path) and expert.quants[0].file == "tiny-2.gguf"
    assert expert.quants[0].size_bytes == path.stat().st_size and expert.default_quant == "F32"
    assert expert.instruct and expert.provenance["instruct"].endswith("tokenizer.chat_template")
    text = (paths.config_dir() / "models.toml").read_text()
    assert text.startswith("# added by `leeroo-local add` from ")

    assert "no such GGUF file" in _fails(["add", str(tiny_dir / "none.gguf")], 2, capsys)
    assert "hf:org/repo" in _fails(["add", "org/repo"], 2, capsys)
    result = runner.invoke(app, ["remove", "tiny-2", "--delete-files"])
    assert result.exit_code == 0, result.output
    assert "tiny-2" not in load_user_catalog().ids()
    assert f"deleted {path}" in result.stdout and not path.exists()
    assert "not in" in _fails(["remove", "gemma-3-270m"], 2, capsys)  # shipped: not the user's


def test_remove_keeps_a_hand_written_catalog_as_written(tiny_dir):
    models = paths.config_dir() / "models.toml"
    models.write_text("# my own experts\n\n# nothing yet\n")
    _add(str(tiny_dir / "tiny-1.gguf"))
    _add(str(tiny_dir / "tiny-3.gguf"))
    assert runner.invoke(app, ["remove", "tiny-1"]).exit_code == 0
    text = models.read_text()
    assert text.startswith("# my own experts\n\n# nothing yet\n") and "tiny-1" not in text
    assert load_user_catalog().get("tiny-3").quants[0].file == "tiny-3.gguf"
    assert (tiny_dir / "tiny-1.gguf").exists()  # files stay unless --delete-files


def _ollama_store(root: Path, name: str, tag: str, gguf: Path) -> Path:
    data = gguf.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    (root / "blobs").mkdir(parents=True)
    blob = root / "blobs" / f"sha256-{digest}"
    shutil.copyfile(gguf, blob)
    (root / "blobs" / ("sha256-" + "a" * 64)).write_text("{{ .Prompt }}")
    manifest = root / "manifests" / "registry.ollama.ai" / "library" / name / tag
    manifest.parent.mkdir(parents=True)
    manifest.write_text(json.dumps({"schemaVersion": 2, "layers": [
        {"mediaType": "application/vnd.ollama.image.model", "digest": f"sha256:{digest}",
         "size": len(data)},
        {"mediaType": "application/vnd.ollama.image.template", "digest": "sha256:" + "a" * 64,
         "size": 13}]}))
    return blob


def test_an_ollama_model_is_registered_in_place(tiny_dir, tmp_path, monkeypatch, capsys):
    root = tmp_path / "ollama" / "models"
    blob = _ollama_store(root, "tinyllm", "1b", tiny_dir / "tiny-1.gguf")
    monkeypatch.setenv("OLLAMA_MODELS", str(root))
    added = _add("ollama:tinyllm:1b")
    assert added["id"] == "tinyllm-1b" and added["kind"] == "ollama"
    expert = load_user_catalog().get("tinyllm-1b")
    assert Path(expert.source.folder) / expert.quants[0].file == blob
    assert expert.quants[0].sha256 == blob.name.removeprefix("sha256-")
    assert "Ollama manifest" in expert.provenance["quants"]
    from leeroo_local.locate import local_path

    assert local_path(expert, expert.quants[0]) == blob  # used in place: nothing copied
    assert not list(paths.home().rglob("*.gguf")) and not list(paths.home().rglob("sha256-*"))

    err = _fails(["add", "ollama:tinyllm"], 2, capsys)
    assert "no Ollama model 'tinyllm'" in err and "tinyllm:1b" in err
    assert runner.invoke(app, ["remove", "tinyllm-1b", "--delete-files"]).exit_code == 0
    assert blob.exists()  # the Ollama store's file is Ollama's


@pytest.mark.slow
def test_onboard_stores_outcomes_joins_and_the_policy_routes_to_it(tiny_dir, tmp_path, monkeypatch):
    """The universe (tiny-1, tiny-2) is wrong on every stored question: the added tiny-3 gains
    whatever it gets right, joins, and the retrained policy sends prompts to it."""
    from leeroo_local.runtime.service import Service
    from leeroo_local.settings import load_settings
    from leeroo_local.store import open_db
    from leeroo_local.store.evaluations import Outcome, record_outcomes
    from selfplay_helpers import write_questions

    install_tiny_universe(tiny_dir, n=2, n_ctx=256)
    for key, value in (("N_THREADS", "1"), ("RAM_BUDGET", "256MB")):
        monkeypatch.setenv(f"LEEROO_{key}", value)
    rows = [json.loads(line) for line in
            write_questions(tmp_path / "q.jsonl", n=24).read_text().splitlines()]
    db = open_db()
    db["questions"].insert_all([{"id": r["id"], "text": r["question"], "source": "test",
                                 "options": json.dumps(r["options"]), "answer": r["answer"]}
                                for r in rows], pk="id")
    record_outcomes(db, [Outcome(r["id"], e, 0.0, "test", "F32") for r in rows
                         for e in ("tiny-1", "tiny-2")])

    # interrupted after 5 outcomes (as Ctrl-C would), then run again: it resumes
    _add(str(tiny_dir / "tiny-3.gguf"))
    from leeroo_local.selfplay.adopt import adopt

    def stop(event):
        if event.stage == "onboarding" and event.done == 5:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        adopt("tiny-3", questions=24, on_event=stop)
    assert db.execute("SELECT COUNT(*) FROM outcomes WHERE expert = 'tiny-3'").fetchone()[0] == 5

    out = _add(str(tiny_dir / "tiny-3.gguf"), "--onboard", "--questions", "24")
    assert out["added"]["reused"]
    verdict = out["onboard"]["verdict"]
    assert out["added"]["id"] == "tiny-3" and verdict["questions"] == 24
    assert verdict["universe_score"] == 0.0 and verdict["unique_wins"] > 0
    assert verdict["join"] and verdict["quant"] == "F32"
    assert out["onboard"]["universe"] == ["tiny-1@F32", "tiny-2@F32", "tiny-3@F32"]
    assert out["onboard"]["retrain"]["action"] == "accepted"
    stored = list(db.query("SELECT * FROM outcomes WHERE expert = 'tiny-3'"))
    assert len(stored) == 24 and {r["chosen_by"] for r in stored} == {"onboard"}

    service = Service(load_settings())
    try:
        picks = [service.route(f"{r['question']} {' '.join(r['options'])}").expert for r in rows]
    finally:
        service.close()
    assert picks.count("tiny-3") > len(picks) / 2, picks

    # once it is a member, onboarding it again is refused (and runs nothing)
    again = runner.invoke(app, ["add", str(tiny_dir / "tiny-3.gguf"), "--onboard"])
    assert again.exit_code != 0 and "member of the universe already" in str(again.exception)
    assert db.execute("SELECT COUNT(*) FROM outcomes WHERE expert = 'tiny-3'").fetchone()[0] == 24

    # removed, it leaves the saved universe too (its outcomes stay in the store)
    removed = runner.invoke(app, ["remove", "tiny-3", "--json"])
    assert removed.exit_code == 0, removed.output
    assert json.loads(removed.stdout)["universe"] == ["tiny-1@F32", "tiny-2@F32"]
    assert json.loads(paths.universe_path().read_text())["members"][-1]["expert"] == "tiny-2"
    assert (tiny_dir / "tiny-3.gguf").exists()


def test_ollama_names_map_to_their_manifests(tmp_path):
    from leeroo_local.provision.ollama_store import list_models, manifest_path

    root = tmp_path / "models"
    m = root / "manifests"
    assert manifest_path("llama3.2", root) == m / "registry.ollama.ai/library/llama3.2/latest"
    assert manifest_path("llama3.2:3b", root) == m / "registry.ollama.ai/library/llama3.2/3b"
    assert manifest_path("me/mine:v1", root) == m / "registry.ollama.ai/me/mine/v1"
    assert manifest_path("hf.co/org/Repo-GGUF:Q4_K_M", root) == m / "hf.co/org/Repo-GGUF/Q4_K_M"
    for path in (m / "registry.ollama.ai/library/llama3.2/3b", m / "hf.co/org/Repo-GGUF/Q4_K_M"):
        path.parent.mkdir(parents=True)
        path.write_text("{}")
    assert list_models(root) == ["hf.co/org/Repo-GGUF:Q4_K_M", "llama3.2:3b"]
