"""Which local backend `serve` runs: llama-server (continuous batching) when `auto` finds a binary
(the setting, PATH, or one built into $LEEROO_HOME/bin), the worker otherwise; said at start."""

from __future__ import annotations

import os
import shutil

import pytest

from conftest import LLAMA_SERVER
from leeroo_local import paths
from leeroo_local.backends.llama_server import find_llama_server
from leeroo_local.preflight import choose_backend
from leeroo_local.provision.llama_server import target
from leeroo_local.settings import Settings

BINARY = find_llama_server(LLAMA_SERVER)


def choice(**settings) -> tuple[str, list[str]]:
    said: list[str] = []
    return choose_backend(Settings(**settings), said.append), said


def test_without_a_binary_serve_runs_the_worker_and_says_how_to_batch(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    chosen, said = choice()
    assert chosen == "worker" and "llama-server build" in said[0]
    assert choice(local_backend="worker")[0] == "worker"


@pytest.mark.skipif(BINARY is None, reason="no llama-server binary (LEEROO_LLAMA_SERVER)")
def test_a_built_binary_in_the_home_is_found_and_chosen(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    built = target("0.0.test")
    built.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(BINARY, built)
    assert find_llama_server("") == str(built)
    chosen, said = choice()
    assert chosen == "llama-server" and str(built) in said[0] and "8 slots" in said[0]


def test_the_setting_wins_and_a_wrong_path_is_not_found(tmp_path):
    missing = tmp_path / "nope"
    assert find_llama_server(str(missing)) is None
    fake = tmp_path / "llama-server"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert find_llama_server(str(fake)) == str(fake)
    assert paths.home() not in fake.parents and os.access(fake, os.X_OK)
