"""Build llama.cpp's own llama-server from the sources of the installed llama-cpp-python, so a
user gets continuous batching (the llama-server backend) without reading `.ci/`.

The sdist comes from the package index pip uses (the only network this needs); CPU only, no web
UI, nothing else fetched; a few to twenty minutes on a few cores. The binary goes to
$LEEROO_HOME/bin/llama-server-VERSION, where backends.llama_server.find_llama_server looks.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

from .. import paths
from ..diskerrors import disk_errors, removed_on_failure
from ..errors import LeerooError

_PERCENT = re.compile(r"^\[\s*(\d+)%\]")


def installed_version() -> str:
    """The installed llama-cpp-python's version, asked of a child (this process stays free of
    llama.cpp)."""
    out = subprocess.run([sys.executable, "-c", "import llama_cpp; print(llama_cpp.__version__)"],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise LeerooError(f"llama-cpp-python is not importable: {out.stderr.strip()[-300:]}")
    return out.stdout.strip()


def target(version: str) -> Path:
    return paths.home() / "bin" / f"llama-server-{version}"


def build(progress: Callable[[str, int | None], None] = lambda stage, pct: None,
          jobs: int | None = None) -> Path:
    """Download, configure and build llama-server; its path. `progress(stage, percent)` hears
    each stage (download, configure, build with cmake's percent, install)."""
    version = installed_version()
    dest = target(version)
    if dest.is_file() and os.access(dest, os.X_OK):
        progress("present", 100)
        return dest
    if shutil.which("cmake") is None:
        raise LeerooError("building llama-server needs cmake and a C++ compiler (e.g. apt install "
                          "cmake g++)")
    with tempfile.TemporaryDirectory(prefix="leeroo-llama-server-") as work_dir:
        work = Path(work_dir)
        progress("download", None)
        _run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary=:all:",
              "-d", str(work), f"llama-cpp-python=={version}"], "downloading the sources")
        sdist = next(work.glob("llama_cpp_python-*.tar.gz"))
        with tarfile.open(sdist) as tar:
            tar.extractall(work, filter="data")
        src = next(work.glob("llama_cpp_python-*/vendor/llama.cpp"))
        progress("configure", None)
        _run(["cmake", "-S", str(src), "-B", str(work / "build"), "-DCMAKE_BUILD_TYPE=Release",
              "-DGGML_NATIVE=OFF", "-DLLAMA_BUILD_SERVER=ON", "-DLLAMA_BUILD_UI=OFF",
              "-DLLAMA_USE_PREBUILT_UI=OFF", "-DLLAMA_OPENSSL=OFF", "-DLLAMA_CURL=OFF",
              "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF", "-DBUILD_SHARED_LIBS=OFF"],
             "configuring")
        _run(["cmake", "--build", str(work / "build"), "--target", "llama-server",
              f"-j{jobs or os.cpu_count() or 1}"], "building",
             lambda line: _percent(line, progress))
        progress("install", None)
        partial = dest.with_name(dest.name + ".partial")
        with disk_errors(partial), removed_on_failure(partial):
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(work / "build" / "bin" / "llama-server", partial)
            partial.replace(dest)
    progress("done", 100)
    return dest


def _percent(line: str, progress: Callable[[str, int | None], None]) -> None:
    hit = _PERCENT.match(line)
    if hit:
        progress("build", int(hit.group(1)))


def _run(cmd: list[str], what: str, each_line: Callable[[str], None] | None = None) -> None:
    tail: list[str] = []
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          errors="replace") as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            tail = (tail + [line.rstrip()])[-20:]
            if each_line:
                each_line(line)
    if proc.returncode != 0:
        raise LeerooError(f"llama-server: {what} failed (exit {proc.returncode}): "
                          f"{' | '.join(t for t in tail[-3:] if t)}")
