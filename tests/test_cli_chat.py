"""`leeroo-local chat` as a user starts it: the real command, in a subprocess, with Textual's
headless driver and keys pressed through TEXTUAL_PRESS."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from helpers import install_tiny_universe
from leeroo_local.cli import app
from leeroo_local.store.requests import RequestLog

ROOT = Path(__file__).resolve().parents[1]


def test_chat_command_answers_a_typed_prompt_and_quits(tiny_dir):
    pytest.importorskip("textual")
    install_tiny_universe(tiny_dir, n_ctx=256)
    # wait:200 lets the screen focus the prompt first (a person never types that fast).
    env = {**os.environ, "TEXTUAL_DRIVER": "textual.drivers.headless_driver:HeadlessDriver",
           "TEXTUAL_PRESS": "wait:200,h,i,enter,ctrl+q"}
    out = subprocess.run([sys.executable, "-m", "leeroo_local.cli", "chat", "-n", "4", "--seed", "1"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Traceback" not in out.stderr
    log = RequestLog()
    try:
        rows = log.recent(5)
    finally:
        log.close()
    # The prompt reached the service through the app and was logged under a conversation
    # (answered, or cut short by the quit that followed it at once).
    assert [r["prompt"] for r in rows] == ["hi"]
    assert rows[0]["client"] == "chat" and rows[0]["conversation"]


def test_chat_command_refuses_an_unknown_expert_before_opening():
    result = CliRunner().invoke(app, ["chat", "--expert", "nope"])
    assert result.exit_code != 0
    assert "unknown expert 'nope'" in str(result.exception)
