"""hub.pull and `leeroo-local pull` against a fake hub on 127.0.0.1 serving tiny GGUF files.

HF_ENDPOINT is set with monkeypatch only: huggingface_hub 2.4 copies it into constants.ENDPOINT at
import, so hub.py reads the variable at call time and passes `endpoint=` to every call.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fake_hub import FakeHub
from tiny_gguf import write_tiny_llama
from typer.testing import CliRunner

from leeroo_local import paths
from leeroo_local.cli import app, main
from leeroo_local.cli.common import user_catalog
from leeroo_local.errors import DownloadError, NotAvailableOffline
from leeroo_local.provision.hub import pull
from leeroo_local.locate import local_path

REPO = "tiny-org/tiny-llama-GGUF"
ARCH = ('{ architecture = "llama", n_layers = 2, n_embd = 64, n_heads = 4, n_kv_heads = 2, '
        'head_dim = 16, n_vocab = 259, n_ctx_train = 512, params_b = 0.0001, active_params_b = 0.0001 }')


@pytest.fixture(scope="module")
def gguf_bytes(tmp_path_factory) -> list[bytes]:
    """Two distinct tiny GGUF files, as bytes."""
    folder = tmp_path_factory.mktemp("hubfiles")
    return [write_tiny_llama(folder / f"t{seed}.gguf", seed=seed).read_bytes() for seed in (1, 2)]


@pytest.fixture(scope="module")
def big_gguf(tmp_path_factory) -> bytes:
    """A 19 MiB tiny GGUF: more than huggingface_hub's 10 MiB download chunk, which it writes whole."""
    path = tmp_path_factory.mktemp("hubbig") / "big.gguf"
    return write_tiny_llama(path, seed=3, n_embd=512, n_ff=1024).read_bytes()


@pytest.fixture
def hub(monkeypatch):
    fake = FakeHub().start()
    monkeypatch.setenv("HF_ENDPOINT", fake.url)
    yield fake
    fake.stop()


def add_expert(expert_id: str, quants: list[tuple[str, str, int, str]], repo: str = REPO):
    """Append a hub expert to the user catalog; quants are (type, file, size_bytes, size_basis)."""
    rows = ",\n".join(f'  {{ type = "{t}", file = "{f}", size_bytes = {n}, size_basis = "{b}" }}'
                      for t, f, n, b in quants)
    entry = f"""
[[experts]]
id = "{expert_id}"
name = "{expert_id}"
license = "mit"
instruct = true
default_quant = "{quants[0][0]}"
source = {{ kind = "hf", repo = "{repo}" }}
arch = {ARCH}
quants = [
{rows},
]
"""
    file = paths.config_dir() / "models.toml"
    file.write_text((file.read_text() if file.exists() else "") + entry)
    expert = user_catalog().get(expert_id)
    return expert, expert.quant()


def hf_cache() -> Path:
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def blobs_dir() -> Path:
    return hf_cache() / ("models--" + REPO.replace("/", "--")) / "blobs"


def test_pull_lands_in_hf_cache_and_second_pull_makes_no_request(hub, gguf_bytes):
    data = gguf_bytes[0]
    sha = hub.add(REPO, "tiny.Q8_0.gguf", data)
    expert, quant = add_expert("tiny-a", [("Q8_0", "tiny.Q8_0.gguf", len(data), "exact")])
    seen = []

    path = pull(expert, quant, progress=lambda done, total: seen.append((done, total)))

    assert path.read_bytes() == data
    assert path.is_relative_to(hf_cache())
    assert path.parent.name == hub.commit and path.resolve().name == sha
    assert local_path(expert, quant) == path
    gets = [r for r in hub.requests if r.method == "GET"]
    assert len(gets) == 1 and gets[0].server == "cdn" and gets[0].range is None
    assert seen[-1] == (len(data), len(data)) and len(seen) >= 2
    before = len(hub.requests)
    assert pull(expert, quant, progress=False) == path
    assert len(hub.requests) == before  # cached: no HEAD, no GET


def test_xet_headers_do_not_divert_the_download_from_plain_http(hub, gguf_bytes):
    hub.xet = True  # as the real hub answers for xet-backed repos; hf_xet is installed here
    data = gguf_bytes[0]
    hub.add(REPO, "tiny.Q8_0.gguf", data)
    expert, quant = add_expert("tiny-a", [("Q8_0", "tiny.Q8_0.gguf", len(data), "exact")])

    assert pull(expert, quant, progress=False).read_bytes() == data
    assert [(r.server, r.method) for r in hub.requests] == [("hub", "HEAD"), ("cdn", "GET"),
                                                            ("hub", "HEAD")]


def test_interrupted_download_resumes_on_next_pull(hub, big_gguf):
    data = big_gguf
    sha = hub.add(REPO, "big.Q8_0.gguf", data)
    expert, quant = add_expert("big", [("Q8_0", "big.Q8_0.gguf", len(data), "exact")])
    cut = 15 * 2**20
    hub.interrupt(sha, after=cut, then_down=True)  # hang up mid-body, then answer 503

    with pytest.raises(DownloadError, match="kept and the next pull resumes"):
        pull(expert, quant, progress=False)
    partial = blobs_dir() / f"{sha}.incomplete"
    kept = partial.stat().st_size  # whole chunks only: huggingface_hub writes 10 MiB at a time
    assert 0 < kept <= cut and partial.read_bytes() == data[:kept]
    assert local_path(expert, quant) is None

    hub.down = False
    path = pull(expert, quant, progress=False)
    assert path.read_bytes() == data
    assert not partial.exists()
    gets = [r for r in hub.requests if r.method == "GET"]
    assert gets[0].range is None
    assert all(g.range == f"bytes={kept}-" for g in gets[1:])  # never again from byte 0
    assert gets[-1].server == "cdn"


def test_sharded_model_pulls_every_shard_into_one_snapshot(hub, gguf_bytes):
    names = ["tiny-Q8_0-00001-of-00002.gguf", "tiny-Q8_0-00002-of-00002.gguf"]
    for name, data in zip(names, gguf_bytes):
        hub.add(REPO, name, data)
    total = sum(map(len, gguf_bytes))
    expert, quant = add_expert("tiny-split", [("Q8_0", names[0], total, "exact")])
    seen = []

    path = pull(expert, quant, progress=lambda done, tot: seen.append((done, tot)))

    assert path.name == names[0]
    assert [(path.parent / n).read_bytes() for n in names] == gguf_bytes
    assert hub.count("GET") == 2
    assert seen[-1] == (total, total)


def test_missing_file_is_a_clear_error_and_exit_code_4(hub, gguf_bytes, capsys):
    hub.add(REPO, "tiny.Q8_0.gguf", gguf_bytes[0])
    expert, quant = add_expert("tiny-gone", [("Q4_K_M", "tiny.Q4_K_M.gguf", 1000, "exact")])

    with pytest.raises(DownloadError, match=f"{REPO} has no file tiny.Q4_K_M.gguf at revision main"):
        pull(expert, quant, progress=False)
    with pytest.raises(SystemExit) as exit_:
        main(["pull", "tiny-gone"])
    assert exit_.value.code == 4
    assert "has no file tiny.Q4_K_M.gguf" in capsys.readouterr().err
    assert hub.count("GET") == 0


def test_size_differing_from_exact_catalog_size_fails_before_downloading(hub, gguf_bytes):
    data = gguf_bytes[0]
    hub.add(REPO, "tiny.Q8_0.gguf", data)
    expert, quant = add_expert("tiny-a", [("Q8_0", "tiny.Q8_0.gguf", len(data) + 7, "exact")])

    with pytest.raises(DownloadError, match=f"{len(data):,} bytes .* exactly {len(data) + 7:,}"):
        pull(expert, quant, progress=False)
    assert hub.count("GET") == 0
    assert local_path(expert, quant) is None


@pytest.mark.parametrize("factor, ok", [(1.03, True), (0.97, True), (1.2, False)])
def test_listed_size_is_checked_with_a_tolerance(hub, gguf_bytes, factor, ok):
    data = gguf_bytes[0]
    hub.add(REPO, "tiny.Q8_0.gguf", data)
    expert, quant = add_expert("tiny-a", [("Q8_0", "tiny.Q8_0.gguf", int(len(data) * factor), "listed")])
    if ok:
        assert pull(expert, quant, progress=False).read_bytes() == data
    else:
        with pytest.raises(DownloadError, match="the file is not the one the catalog describes"):
            pull(expert, quant, progress=False)


def test_more_bytes_than_announced_are_deleted_so_a_retry_starts_clean(hub, gguf_bytes):
    data = gguf_bytes[0]
    sha = hub.add(REPO, "tiny.Q8_0.gguf", data, announce=len(data) - 100)
    expert, quant = add_expert("tiny-a", [("Q8_0", "tiny.Q8_0.gguf", len(data), "computed")])

    with pytest.raises(DownloadError, match="more than the .* bytes it announced"):
        pull(expert, quant, progress=False)
    assert not (blobs_dir() / sha).exists()
    assert not (blobs_dir() / f"{sha}.incomplete").exists()


def test_unreachable_hub_is_a_download_error(monkeypatch, gguf_bytes):
    import socket

    with socket.socket() as s:  # a port that nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    expert, quant = add_expert("tiny-a", [("Q8_0", "tiny.Q8_0.gguf", 1000, "exact")])

    with pytest.raises(DownloadError, match="check the connection"):
        pull(expert, quant, progress=False)


def test_offline_returns_cached_files_and_explains_missing_ones(hub, gguf_bytes, monkeypatch):
    data = gguf_bytes[0]
    hub.add(REPO, "tiny.Q8_0.gguf", data)
    expert, quant = add_expert("tiny-a", [("Q8_0", "tiny.Q8_0.gguf", len(data), "exact")])
    other, other_q = add_expert("tiny-b", [("Q8_0", "other.Q8_0.gguf", 1000, "exact")])
    path = pull(expert, quant, progress=False)
    before = len(hub.requests)

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert pull(expert, quant, progress=False) == path
    with pytest.raises(NotAvailableOffline, match="unset HF_HUB_OFFLINE and run `leeroo-local pull tiny-b"):
        pull(other, other_q, progress=False)
    assert len(hub.requests) == before


def test_cli_pull_prints_path_and_size(hub, gguf_bytes):
    data = gguf_bytes[1]
    hub.add(REPO, "tiny.Q8_0.gguf", data)
    add_expert("tiny-a", [("Q8_0", "tiny.Q8_0.gguf", len(data), "exact"),
                          ("Q4_K_M", "tiny.Q4_K_M.gguf", 10, "computed")])

    result = CliRunner().invoke(app, ["pull", "tiny-a", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["quant"] == "Q8_0" and out["size_bytes"] == len(data)
    assert Path(out["path"]).read_bytes() == data

    text = CliRunner().invoke(app, ["pull", "tiny-a", "--quant", "q8_0"])
    assert text.exit_code == 0
    assert text.stdout.startswith(out["path"])


def test_cli_unknown_expert_names_known_ids(hub, capsys):
    add_expert("tiny-a", [("Q8_0", "tiny.Q8_0.gguf", 1000, "exact")])
    with pytest.raises(SystemExit) as exit_:
        main(["pull", "no-such-expert"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "unknown expert 'no-such-expert'" in err and "tiny-a" in err
