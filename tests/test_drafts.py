"""Draft pairing for speculative decoding: the same tokenizer read from GGUF headers, smaller
members as candidates, the measured choice and where it is kept (no processes started here)."""

from __future__ import annotations

import json
import tomllib

import pytest
from typer.testing import CliRunner

from helpers import tiny_expert_toml
from leeroo_local import paths
from leeroo_local.backends.base import Sampling
from leeroo_local.backends.llama_cpp import LlamaCppModel
from leeroo_local.catalog import load_user_catalog
from leeroo_local.errors import MissingCapability
from leeroo_local.fit.drafts import candidates, for_universe, same_tokenizer
from leeroo_local.gguf_info import read_gguf
from leeroo_local.settings import load_settings
from leeroo_local.tune import SpecOption, SpecTuning, choose, save_speculative
from leeroo_local.universe import Member, Universe
from tiny_gguf import write_tiny_llama


@pytest.fixture(scope="module")
def family(tmp_path_factory):
    """A target, a smaller model of its tokenizer, and one as small with another tokenizer."""
    folder = tmp_path_factory.mktemp("family")
    write_tiny_llama(folder / "big.gguf", seed=1, n_embd=128, n_ff=256, n_layers=3)
    write_tiny_llama(folder / "small.gguf", seed=2, n_embd=32, n_ff=64, n_layers=1)
    write_tiny_llama(folder / "other.gguf", seed=3, n_embd=32, n_ff=64, n_layers=1,
                     extra_tokens=["hello", "world"])
    return folder


def test_same_tokenizer_reads_the_token_list_from_the_headers(family, tiny_dir):
    assert same_tokenizer(family / "big.gguf", family / "small.gguf")  # the byte vocabulary
    assert same_tokenizer(tiny_dir / "tiny-1.gguf", family / "small.gguf")
    assert not same_tokenizer(family / "big.gguf", family / "other.gguf")  # two more tokens
    a, b = read_gguf(family / "big.gguf").tokenizer, read_gguf(family / "other.gguf").tokenizer
    assert a[0] == b[0] == "llama" and (a[2], b[2]) == (259, 261) and a[3] != b[3]


def test_the_token_list_digest_is_the_same_kept_or_skipped(tmp_path):
    """A vocabulary longer than the parser keeps is hashed while skipped: the same bytes give
    the same digest either way, and the cached parse carries it."""
    many = [f"tok{i}" for i in range(5000)]
    path = write_tiny_llama(tmp_path / "long.gguf", n_embd=16, n_ff=32, n_layers=1,
                            extra_tokens=many)
    fresh, cached = read_gguf(path, cache=False), read_gguf(path)
    assert fresh.metadata["tokenizer.ggml.tokens"] is None  # skipped, only hashed
    assert read_gguf(path).tokenizer == cached.tokenizer == fresh.tokenizer
    import hashlib
    import struct

    raw = [b"<unk>", b"<s>", b"</s>"] + [f"<0x{i:02X}>".encode() for i in range(256)]
    raw += [t.encode() for t in many]
    expected = hashlib.sha1(b"".join(struct.pack("<Q", len(t)) + t for t in raw)).hexdigest()
    assert fresh.tokenizer[3] == expected


def test_candidates_are_smaller_members_of_the_same_tokenizer(family):
    files = {e: family / f"{e}.gguf" for e in ("big", "small", "other")}
    pairs = candidates(files)
    assert [(c.target, c.draft) for c in pairs] == [("big", "small")]
    assert 0 < pairs[0].share < 0.2
    assert candidates(files, max_share=0.01) == []


def test_the_universe_pairs_only_its_members_whose_file_is_here(family, tmp_path):
    (paths.config_dir() / "models.toml").write_text(
        "".join(tiny_expert_toml(e, family, f"{e}.gguf") for e in ("big", "small", "other")))
    catalog = load_user_catalog()
    both = Universe(members=[Member(expert=e, quant="F32") for e in ("big", "small", "other")])
    assert for_universe(catalog, both) == {"big": ["small"]}
    alone = Universe(members=[Member(expert="big", quant="F32")])
    assert for_universe(catalog, alone) == {}


def _option(name, code, prose):
    return SpecOption(option=name, tok_s={"code": code, "prose": prose},
                      speedup={"code": code, "prose": prose})


def test_a_choice_must_pay_on_the_whole_and_lose_little_anywhere():
    alone = SpecOption(option="alone", tok_s={"code": 1.0, "prose": 1.0})
    assert choose([alone, _option("ngram", 1.9, 0.97)]) == "ngram"
    assert choose([alone, _option("ngram", 1.02, 1.03)]) is None  # within the margin
    assert choose([alone, _option("ngram", 3.0, 0.8)]) is None  # prose loses too much
    assert choose([alone, _option("ngram", 1.3, 1.0), _option("small", 1.5, 1.2)]) == "small"
    assert choose([alone]) is None


def test_saving_the_choice_keeps_the_rest_of_the_config():
    config = paths.config_dir() / "config.toml"
    config.write_text('n_threads = 2\n\n[speculative]\n"kept-expert" = "ngram"\n'
                      '"big" = "old"\n\n[sampling]\ntemperature = 0.3\n')
    chosen = SpecTuning(expert="big", backend="llama-server", rounds=1, tokens=8, options=[],
                        chosen="small")
    save_speculative([chosen])
    settings = load_settings()
    assert settings.speculative == {"big": "small", "kept-expert": "ngram"}
    assert settings.n_threads == 2 and settings.sampling.temperature == 0.3
    save_speculative([chosen.model_copy(update={"chosen": None})])  # measured again: none pays
    assert load_settings().speculative == {"kept-expert": "ngram"}
    assert tomllib.loads(config.read_text())["sampling"] == {"temperature": 0.3}


def test_the_worker_drafts_by_prompt_lookup_and_keeps_the_greedy_answer(tiny_dir):
    """Prompt lookup on the worker: drafts copied from the prompt are checked in one batch;
    greedy answers are the ones the expert gives alone."""
    prompt = "abc abc abc abc abc abc abc abc abc abc"
    greedy = Sampling(max_tokens=32, temperature=0, seed=1)
    alone = LlamaCppModel(tiny_dir / "tiny-1.gguf", n_ctx=256, n_threads=1)
    lookup = LlamaCppModel(tiny_dir / "tiny-1.gguf", n_ctx=256, n_threads=1, draft="ngram")
    try:
        assert lookup.info.extra == {"draft": "ngram"} and alone.info.extra == {}
        for text in (prompt, prompt + " and more", "xyz " * 30):  # long: past one batch too
            a = "".join(c.text for c in alone.complete(text, greedy))
            b = "".join(c.text for c in lookup.complete(text, greedy))
            assert a == b and a
        final = list(lookup.complete(prompt, greedy))[-1]
        assert final.completion_tokens == 32
    finally:
        alone.close()
        lookup.close()


def test_the_worker_has_no_draft_models(tiny_dir):
    with pytest.raises(MissingCapability, match="llama-server"):
        LlamaCppModel(tiny_dir / "tiny-1.gguf", n_ctx=256, n_threads=1,
                      draft=str(tiny_dir / "tiny-2.gguf"))


def test_fit_json_says_which_members_could_draft():
    """The shipped catalog's files are not on this machine: no header, no candidate."""
    from leeroo_local.cli import app

    out = CliRunner().invoke(app, ["fit", "--vram", "8GB", "--ram", "16GB", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["drafts"] == {}
