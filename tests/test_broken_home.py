"""A broken home stops `serve`, `run` and `logs` at start with one line and exit 2, never a
server that answers 500 to every request or a traceback; a damaged database is moved aside
(nothing deleted) and the command goes on with a new one."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import install_tiny_universe
from leeroo_local import paths
from leeroo_local.cli import main

GARBAGE = b"this is not a database, it only lives where one should\n" * 40


def one_line_exit_2(capsys, argv) -> str:
    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert info.value.code == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("error: ")
    return err


@pytest.fixture
def tmpfs(tmp_path, monkeypatch):
    """Mount a small tmpfs (options: size, ro) and point LEEROO_HOME at it; skipped where this
    process may not mount (not root, or mount refused)."""
    mounted = []

    def make(options: str, fill: bool = False) -> Path:
        if os.geteuid() != 0:
            pytest.skip("mounting a tmpfs needs root")
        target = tmp_path / f"mnt{len(mounted)}"
        target.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"mount refused here: {done.stderr.strip()}")
        mounted.append(target)
        if fill:
            fd = os.open(target / "filler", os.O_WRONLY | os.O_CREAT)
            try:
                with pytest.raises(OSError):
                    while True:
                        os.write(fd, b"\0" * 4096)
            finally:
                os.close(fd)
        monkeypatch.setenv("LEEROO_HOME", str(target))
        return target

    yield make
    for target in mounted:
        subprocess.run(["umount", "-l", str(target)], check=False)


COMMANDS = [["serve", "--port", "0"], ["run", "hi", "-n", "2"], ["chat"]]


@pytest.mark.parametrize("argv", COMMANDS, ids=[a[0] for a in COMMANDS])
def test_a_config_value_that_is_not_a_size_is_one_line(capsys, argv):
    (paths.config_dir() / "config.toml").write_text('ram_budget = "lots"\n')
    err = one_line_exit_2(capsys, argv)
    assert "ram_budget" in err and "'lots'" in err and "config.toml" in err


@pytest.mark.parametrize("argv", COMMANDS, ids=[a[0] for a in COMMANDS])
def test_a_garbage_universe_is_one_line(capsys, argv):
    paths.universe_path().write_bytes(b"\x00{not json")
    err = one_line_exit_2(capsys, argv)
    assert "invalid universe" in err and "fit --save" in err


def test_a_universe_with_a_bad_field_names_it_in_one_line(capsys):
    paths.universe_path().write_text('{"members": [{"expert": "gemma-3-270m"}]}')
    err = one_line_exit_2(capsys, ["run", "hi"])
    assert "members.0.quant" in err


@pytest.mark.parametrize("argv", COMMANDS + [["logs"]], ids=[a[0] for a in COMMANDS] + ["logs"])
def test_a_read_only_home_is_one_line(tmpfs, capsys, argv):
    home = tmpfs("size=1m,ro")
    err = one_line_exit_2(capsys, argv)
    assert str(home) in err


@pytest.mark.parametrize("argv", COMMANDS, ids=[a[0] for a in COMMANDS])
def test_a_full_home_is_one_line(tmpfs, capsys, argv):
    home = tmpfs("size=256k", fill=True)
    err = one_line_exit_2(capsys, argv)
    assert str(home) in err and "free" in err


def test_logs_on_a_damaged_database_is_one_line_and_moves_nothing(capsys):
    paths.db_path().write_bytes(GARBAGE)
    err = one_line_exit_2(capsys, ["logs"])
    assert "not a database" in err and "moves the damaged file aside" in err
    assert paths.db_path().read_bytes() == GARBAGE


def test_run_moves_a_damaged_database_aside_and_answers(tiny_dir, capsys):
    install_tiny_universe(tiny_dir)
    db = paths.db_path()
    db.write_bytes(GARBAGE)
    main(["run", "hello", "-n", "2", "--expert", "tiny-1"])
    err = capsys.readouterr().err
    aside = [p for p in db.parent.iterdir() if p.name.startswith("leeroo.db.damaged-")]
    assert len(aside) == 1 and aside[0].read_bytes() == GARBAGE  # kept, byte for byte
    assert f"moved to {aside[0]}" in err
    rows = sqlite3.connect(db).execute("select expert, error from requests").fetchall()
    assert rows == [("tiny-1", None)]  # the new database logged the answer


def test_serve_on_a_damaged_database_starts_and_logs(tiny_dir, tmp_path):
    """As a user starts it: a process of its own, its address read from stdout."""
    install_tiny_universe(tiny_dir)
    paths.db_path().write_bytes(GARBAGE)
    proc = subprocess.Popen([sys.executable, "-m", "leeroo_local.cli", "serve", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        line = proc.stdout.readline()
        assert "serving" in line, proc.stderr.read() if proc.poll() is not None else line
        import httpx

        url = line.split(" at ")[-1].strip()
        answer = httpx.post(url + "/chat/completions", timeout=60, json={
            "model": "tiny-1", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2})
        assert answer.status_code == 200
        health = httpx.get(url.removesuffix("/v1") + "/health", timeout=10).json()
        assert health["log"]["status"] == "ok"
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert "was damaged" in err and "moved to" in err


@pytest.mark.parametrize("toml,field,bound", [
    ("[sampling]\nrepeat_last_n = 250000000\n", "sampling.repeat_last_n", "1048576"),
    ("[sampling]\ntop_k = 1000000000000\n", "sampling.top_k", "1048576"),
    ("[sampling]\ntemperature = nan\n", "sampling.temperature", "finite"),
    ("n_ctx = 99999999\n", "n_ctx", "1048576"),
    ("llama_server_parallel = 100000\n", "llama_server_parallel", "256"),
    ("keep_alive_s = inf\n", "keep_alive_s", "finite"),
], ids=["repeat_last_n", "top_k", "nan", "n_ctx", "parallel", "inf"])
def test_config_values_have_the_request_bounds(capsys, toml, field, bound):
    (paths.config_dir() / "config.toml").write_text(toml)
    err = one_line_exit_2(capsys, ["run", "hi"])
    assert field in err and bound in err.replace(",", ""), err
