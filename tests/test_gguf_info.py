"""The header reader: facts of valid files, clear errors for broken ones."""

import json
import os

import pytest
from typer.testing import CliRunner

from leeroo_local.cli import app
from leeroo_local.errors import CorruptModel
from leeroo_local.gguf_info import read_gguf
from tiny_gguf import write_tiny_llama


def test_reads_tiny_header(tiny_dir):
    info = read_gguf(tiny_dir / "tiny-1.gguf")
    assert info.architecture == "llama"
    assert info.arch_value("block_count") == 2
    assert info.array_lengths["tokenizer.ggml.tokens"] == 259
    assert info.weights_bytes + info.data_offset <= info.file_size
    assert info.n_params == sum(
        int.__mul__(*t.shape) if len(t.shape) == 2 else t.shape[0] for t in info.tensors
    )


def test_truncated_file_is_reported(tmp_path, tiny_dir):
    data = (tiny_dir / "tiny-1.gguf").read_bytes()
    for cut in (10, 200, len(data) // 2, len(data) - 1):
        broken = tmp_path / f"cut{cut}.gguf"
        broken.write_bytes(data[:cut])
        with pytest.raises(CorruptModel, match="truncated|not a GGUF"):
            read_gguf(broken)


@pytest.mark.parametrize("content", [b"", b"hello world, not a model at all", os.urandom(4096)])
def test_non_gguf_is_reported(tmp_path, content):
    path = tmp_path / "x.gguf"
    path.write_bytes(content)
    with pytest.raises(CorruptModel):
        read_gguf(path)


def test_corrupt_lengths_never_crash(tmp_path, tiny_dir):
    """Every length or count the header holds, set to 2**64-1 (or its high bytes spoiled), is a
    CorruptModel error, never an accepted file or another exception."""
    import struct

    data = bytearray((tiny_dir / "tiny-1.gguf").read_bytes())
    key_len = struct.unpack_from("<Q", data, 24)[0]
    value_len_at = 24 + 8 + key_len + 4  # general.architecture's string value: its length
    assert struct.unpack_from("<I", data, value_len_at - 4)[0] == 8  # a string, as expected
    offsets = {"tensor count": 8, "key count": 16, "first key's length": 24,
               "high bytes of the first key's length": 30, "first value's length": value_len_at,
               "high bytes of the first value's length": value_len_at + 4}
    for what, offset in offsets.items():
        bad = bytearray(data)
        bad[offset:offset + 8] = b"\xff" * 8
        path = tmp_path / f"bad{offset}.gguf"
        path.write_bytes(bad)
        try:
            read_gguf(path)
        except CorruptModel as exc:
            assert "corrupt" in str(exc), (what, str(exc))
        else:
            pytest.fail(f"a spoiled {what} was accepted")


def test_missing_file(tmp_path):
    with pytest.raises(CorruptModel, match="cannot open"):
        read_gguf(tmp_path / "nope.gguf")


def test_inspect_json(tiny_dir):
    result = CliRunner().invoke(app, ["inspect", str(tiny_dir / "tiny-1.gguf"), "--ctx", "512", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    for key in ("weights_bytes", "kv_bytes", "compute_bytes", "overhead_bytes"):
        assert data[key] > 0
    assert data["total_bytes"] == sum(data[k] for k in ("weights_bytes", "kv_bytes", "compute_bytes", "overhead_bytes"))
    # 2 layers x 512 cells x 2 KV heads x (16 + 16) x 2 bytes
    assert data["kv_bytes"] == 2 * 512 * 2 * 32 * 2
    assert data["arch"]["n_kv_heads"] == 2


def test_inspect_corrupt_file_exits_2(tmp_path):
    from leeroo_local.cli import main

    path = tmp_path / "bad.gguf"
    path.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\x00" * 4)
    with pytest.raises(SystemExit) as exit_info:
        main(["inspect", str(path)])
    assert exit_info.value.code == 2


def test_f16_and_bigger_models_scale(tmp_path):
    small = read_gguf(write_tiny_llama(tmp_path / "a.gguf", n_embd=64))
    half = read_gguf(write_tiny_llama(tmp_path / "b.gguf", n_embd=64, f16=True))
    assert half.weights_bytes < small.weights_bytes
    assert half.n_params == small.n_params


def test_the_header_cache_returns_the_parse_and_misses_when_the_file_changes(tmp_path, tiny_dir):
    from leeroo_local import paths

    path = tmp_path / "m.gguf"
    path.write_bytes((tiny_dir / "tiny-2.gguf").read_bytes())
    first = read_gguf(path)
    entries = list((paths.home() / "cache" / "gguf").glob("*.json"))
    assert len(entries) == 1
    again = read_gguf(path)
    fresh = read_gguf(path, cache=False)
    assert (again.metadata, again.tensors, again.data_offset) == (fresh.metadata, fresh.tensors,
                                                                  fresh.data_offset)
    assert again.weights_bytes == first.weights_bytes
    # the same path, truncated by an interrupted copy: a miss, and a clear error
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CorruptModel, match="truncated"):
        read_gguf(path)
    # an unreadable cache entry is parsed again, never trusted
    path.write_bytes((tiny_dir / "tiny-2.gguf").read_bytes())
    read_gguf(path)
    for entry in (paths.home() / "cache" / "gguf").glob("*.json"):
        entry.write_text("{not json")
    assert read_gguf(path).tensors == fresh.tensors
