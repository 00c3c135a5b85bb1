"""The tiers of docs/ARCHITECTURE.md, checked by import-linter: lower tiers never import higher
ones, and only the owning module imports each heavy library."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept():
    exe = Path(sys.executable).with_name("lint-imports")  # this environment's, not PATH's
    if not exe.exists():
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    out = subprocess.run([str(exe), str(ROOT / ".importlinter")], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:]
    assert "0 broken" in out.stdout


def test_help_does_not_import_heavy_libraries():
    code = ("import sys; from leeroo_local.cli import app; "
            "heavy = [m for m in ('llama_cpp', 'onnxruntime', 'textual', 'fastapi', 'huggingface_hub') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"
