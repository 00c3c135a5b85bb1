"""Usage errors of the installed `leeroo-local` entry point: one line on stderr and exit code 2,
never a traceback (typer >= 0.26 raises its bundled click's exceptions, not the `click`
package's)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENTRY = Path(sys.executable).with_name("leeroo-local")


@pytest.mark.skipif(not ENTRY.exists(), reason="the console script is not installed")
@pytest.mark.parametrize("args, says", [
    (["fit", "--vram", "banana"], "not a size"),
    (["fit", "--vram", "0"], "greater than 0"),
    (["fit", "--vram", "-3GB"], "not a size"),
    (["inspect", "model.gguf", "--ctx", "abc"], "--ctx"),
    (["serve", "--port", "99999"], "--port"),
    (["logs", "-n", "abc"], "-n"),
    (["experts", "--no-such-option"], "No such option"),
    (["inspect"], "Missing argument"),
    (["no-such-command"], "No such command"),
])
def test_a_usage_error_is_one_line_and_exit_code_2(args, says):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    done = subprocess.run([str(ENTRY), *args], capture_output=True, text=True, env=env,
                          timeout=120)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
