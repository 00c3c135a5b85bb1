"""The wheel holds every package, the tui and quant folders only inside leeroo_local, and the data."""

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _listed() -> set[str]:
    return set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])


def test_every_package_folder_is_listed_in_pyproject():
    pkg = ROOT / "leeroo_local"
    found = {"leeroo_local"} | {
        "leeroo_local." + ".".join(init.parent.relative_to(pkg).parts)
        for init in pkg.glob("*/**/__init__.py")
    }
    found |= {f"leeroo_local.{d.name}" for d in pkg.iterdir() if (d / "__init__.py").exists()}
    assert found == _listed()


def test_wheel_maps_tui_and_quant_into_the_namespace(tmp_path):
    # Build from a copy, so no stale build/ folder of the checkout can hide a missing package.
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", "build", "*.egg-info", "__pycache__", "tests", "bench"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path), str(src)], check=True, capture_output=True)
    wheel = next(tmp_path.glob("leeroo_local-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"leeroo_local"}
    for must in ("leeroo_local/tui/__init__.py", "leeroo_local/tui/chat.tcss",
                 "leeroo_local/tui/screens/chat.py", "leeroo_local/tui/widgets/route_panel.py",
                 "leeroo_local/quant/__init__.py",
                 "leeroo_local/store/db.py", "leeroo_local/selfplay/sources.py",
                 "leeroo_local/models.toml", "leeroo_local/data/mmlu_pro_dev/outcomes.csv.gz",
                 "leeroo_local/data/starter_mmlu_pro/outcomes.csv.gz",
                 "leeroo_local/policy/onnx_runtime.py", "leeroo_local/policies/catalog/policy.onnx",
                 "leeroo_local/policies/starter/vocab.txt"):
        assert must in names, must
