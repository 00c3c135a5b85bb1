"""The wheel holds every package, the tui and quant folders only inside leeroo_local, and the data."""

import ast
import importlib.metadata
import re
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


def _requirement_names(reqs: list[str]) -> set[str]:
    return {_norm(re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0]) for r in reqs}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _imports(folder: Path) -> dict[str, str]:
    """Top-level modules imported by the .py files under `folder` (absolute imports), with a file
    that imports each."""
    found: dict[str, str] = {}
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], str(path.relative_to(ROOT)))
    return found


def _undeclared(folder: Path, declared: set[str], local: set[str]) -> list[str]:
    dists = importlib.metadata.packages_distributions()
    missing = []
    for module, where in sorted(_imports(folder).items()):
        if module in sys.stdlib_module_names or module in local or module == "leeroo_local":
            continue
        # An extra that is not installed here (e.g. `train`) is matched by its module's name.
        owners = {_norm(d) for d in dists.get(module, [])} or {_norm(module)}
        if not owners & declared:
            missing.append(f"{module} ({where}; from {sorted(owners) or 'nothing installed'})")
    return missing


def test_every_import_is_declared():
    """The package imports only what `dependencies` (or an extra) installs; the tests only what
    the package and the dev and starter extras install. CI's fresh venv would fail too, later."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = _requirement_names(project["dependencies"])
    extras = {k: _requirement_names(v) for k, v in project["optional-dependencies"].items()}
    package_local = {"tui", "quant"}  # leeroo_local's symlinked folders import each other relatively
    assert not _undeclared(ROOT / "leeroo_local", deps.union(*extras.values()), package_local)
    tests_local = {p.stem for p in (ROOT / "tests").rglob("*.py")}
    assert not _undeclared(ROOT / "tests", deps | extras["dev"] | extras["starter"], tests_local)
