"""mypy passes on the runtime and backends packages: the backend seam (Request, Final,
ManagedBackend) is checked where it is used, not only documented."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_mypy_passes_on_runtime_and_backends():
    pytest.importorskip("mypy", reason="mypy is not installed (pip install -e '.[dev]')")
    out = subprocess.run([sys.executable, "-m", "mypy", "--no-incremental",
                          "leeroo_local/runtime", "leeroo_local/backends"],
                         cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-1000:]
