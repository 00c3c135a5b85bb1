"""`leeroo-local serve` as a user starts it: a real process, the openai client, Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import openai
import pytest

from helpers import install_tiny_universe
from leeroo_local import paths
from leeroo_local.cli import main
from leeroo_local.errors import ConfigError
from leeroo_local.server import ServerSettings
from leeroo_local.store.requests import RequestLog

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "example.org"])
def test_an_exposed_address_needs_a_key_or_the_loud_opt_out(host, capsys):
    with pytest.raises(SystemExit) as info:
        main(["serve", "--host", host, "--port", "0"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "--api-key" in err and "--insecure-no-api-key" in err
    assert ServerSettings(host=host, api_key="long-enough").exposed_without_key is False
    assert ServerSettings(host=host, allow_open=True).exposed_without_key is True


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_needs_no_key(host):
    assert ServerSettings(host=host).exposed_without_key is False


def test_a_short_key_or_a_bad_size_is_refused(capsys):
    with pytest.raises(SystemExit):
        main(["serve", "--api-key", "short"])
    assert "api_key" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["serve", "--max-body", "lots"])
    assert "--max-body" in capsys.readouterr().err
    with pytest.raises(ConfigError):
        ServerSettings(host="10.0.0.1", api_key=None)


def test_serve_answers_the_openai_client_and_stops_on_ctrl_c(tiny_dir):
    install_tiny_universe(tiny_dir, n_ctx=256)
    env = {**os.environ, "LEEROO_N_THREADS": "1", "LEEROO_RAM_BUDGET": "128MB"}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from leeroo_local.cli import main; main()", "serve", "--port", "0",
         "--log-level", "warning"], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()  # the address is on stdout, for scripts
        url = re.search(r"at (http://127\.0\.0\.1:\d+/v1)", line)
        assert url, line
        client = openai.OpenAI(base_url=url.group(1), api_key="none", max_retries=0)
        assert [m.id for m in client.models.list().data] == ["auto", "tiny-1", "tiny-2", "tiny-3"]
        answer = client.chat.completions.create(model="tiny-1", messages=[{"role": "user", "content": "hi"}],
                                                max_tokens=3)
        assert answer.model == "tiny-1" and answer.usage.completion_tokens >= 1
        assert httpx.get(url.group(1).removesuffix("/v1") + "/health").json()["status"] == "ready"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(30)
        except subprocess.TimeoutExpired:  # pragma: no cover - reported by the assertion
            proc.kill()
            code = None
    assert code == 0
    log = RequestLog(paths.db_path())  # the server's log, written under this test's home
    try:
        assert log.recent(1)[0]["client"] == "serve"
    finally:
        log.close()


def test_sigterm_mid_stream_ends_it_with_an_error_event_and_logs_it(tiny_dir):
    install_tiny_universe(tiny_dir, n_ctx=4096)
    env = {**os.environ, "LEEROO_N_THREADS": "1", "LEEROO_RAM_BUDGET": "256MB"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "leeroo_local.cli", "serve", "--port", "0", "--log-level",
         "warning", "--shutdown-grace", "0.5"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
        text=True)
    try:
        url = re.search(r"at (http://127\.0\.0\.1:\d+)/v1", proc.stdout.readline()).group(1)
        body = {"model": "tiny-2", "messages": [{"role": "user", "content": "hello"}],
                "temperature": 0, "max_tokens": 4096, "stream": True}
        with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=60,
                          headers={"x-leeroo-conversation": "sigterm"}) as resp:
            lines = resp.iter_lines()
            next(line for line in lines if '"content":"' in line and '"content":""' not in line)
            proc.send_signal(signal.SIGTERM)
            tail = [line for line in lines if line.startswith("data: ")]
        code = proc.wait(60)
    finally:
        if proc.poll() is None:  # pragma: no cover - reported by the assertion
            proc.kill()
    assert code == 0
    assert tail[-1] == "data: [DONE]" and '"code":"server_shutting_down"' in tail[-2]
    log = RequestLog(paths.db_path())
    try:
        row = log.recent(1, conversation="sigterm")[0]
    finally:
        log.close()
    assert row["error"] == "cancelled: the server shut down" and row["response"]


def test_serve_no_pull_answers_a_missing_file_with_a_503_naming_pull(tiny_dir, tmp_path):
    install_tiny_universe(tiny_dir, n=1, n_ctx=256)
    catalog = paths.config_dir() / "models.toml"
    catalog.write_text(catalog.read_text().replace(f'folder = "{tiny_dir}"', f'folder = "{tmp_path}"'))
    env = {**os.environ, "LEEROO_N_THREADS": "1", "LEEROO_RAM_BUDGET": "128MB"}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from leeroo_local.cli import main; main()", "serve", "--port", "0",
         "--no-pull", "--log-level", "warning"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
        text=True)
    try:
        url = re.search(r"at (http://127\.0\.0\.1:\d+/v1)", proc.stdout.readline())
        assert url
        answer = httpx.post(url.group(1) + "/completions", timeout=60,
                            json={"model": "tiny-1", "prompt": "hi", "max_tokens": 2})
        assert answer.status_code == 503
        assert "leeroo-local pull tiny-1 --quant F32" in answer.json()["error"]["message"]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
