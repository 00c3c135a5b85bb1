"""llama.cpp's quantizer, run in child processes: the caller never imports llama_cpp, so `serve`
can make a derived expert's file at start and stay free of llama.cpp (the workers load it)."""

from __future__ import annotations

import collections
import functools
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Callable

from ..diskerrors import DISK_ERRNOS, disk_errors, removed_on_failure, unwritable
from ..errors import LeerooError, UnknownQuant
from ..gguf_info import read_gguf, tensor_type_for


@functools.cache
def quant_types() -> dict[str, int]:
    """Quantization names llama.cpp's quantizer accepts, with their ftype codes (asked once of a
    child process)."""
    code = ("import json; from leeroo_local.backends.llama_cpp import quant_types; "
            "print(json.dumps(quant_types()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode != 0:
        raise LeerooError(f"llama.cpp's quantizer is not available: {out.stderr.strip()[-300:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


_TENSOR_LINE = re.compile(r"^\[\s*(\d+)/\s*(\d+)\]")


def quantize_file(src: Path, dst: Path, qtype: str, *, allow_requantize: bool = False,
                  same_embeddings: bool = True, embeddings: str | None = None,
                  progress: Callable[[int, int], None] | None = None) -> Path:
    """Quantize `src` to `qtype` with llama.cpp's quantizer, in a child process.

    llama.cpp aborts the whole process on some impossible conversions, so the work runs in a
    spawned child; the output appears at `dst` only when complete. `progress(done, total)` is
    called for each tensor line the quantizer prints. `same_embeddings`: the token embeddings
    get `qtype` too (else llama.cpp's own choice, usually Q6_K or better); `embeddings`, a ggml
    tensor type (Q4_0, Q8_0, ...), overrides both.
    """
    types = quant_types()
    key = qtype.upper()
    if key not in types:
        raise UnknownQuant(f"unknown quantization {qtype!r}; llama.cpp offers {', '.join(sorted(types))}")
    read_gguf(src)
    partial = dst.with_suffix(dst.suffix + ".partial")
    with disk_errors(partial), removed_on_failure(partial):  # Ctrl-C or a full disk included
        dst.parent.mkdir(parents=True, exist_ok=True)
        _run_quantizer(src, partial, key, types[key], allow_requantize,
                       embeddings or (key if same_embeddings else None), progress)
        partial.replace(dst)
    return dst


def _run_quantizer(src: Path, partial: Path, key: str, ftype: int, allow_requantize: bool,
                   embeddings: str | None, progress: Callable[[int, int], None] | None) -> None:
    """The quantizer's child process, writing `partial`; its failure as one clear error (a full
    or read-only disk, told by the error text llama.cpp prints, as a DiskError)."""
    import gguf

    embed_name = tensor_type_for(embeddings) if embeddings else None
    embed = int(gguf.GGMLQuantizationType[embed_name].value) if embed_name else -1
    code = (
        "import sys; from leeroo_local.backends.llama_cpp import _quantize_child; "
        "_quantize_child(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == '1', int(sys.argv[5]))"
    )
    args = [sys.executable, "-c", code, str(src), str(partial), str(ftype),
            "1" if allow_requantize else "0", str(embed)]
    said: collections.deque[str] = collections.deque(maxlen=200)
    with subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          errors="replace") as proc:
        assert proc.stderr is not None  # stderr=PIPE
        for line in proc.stderr:
            said.append(line)
            hit = _TENSOR_LINE.match(line)
            if hit and progress is not None:
                progress(int(hit.group(1)), int(hit.group(2)))
    if proc.returncode == 0 and partial.exists():
        return
    text = "".join(said)
    # llama.cpp's writer says only "iostream error" when the disk refuses: ask the disk why
    if "iostream error" in text or any(os.strerror(c) in text for c in DISK_ERRNOS):
        cause = unwritable(partial.parent, need=src.stat().st_size)
        if cause is not None:
            raise OSError(cause, os.strerror(cause), str(partial))
    lines = text.replace(", llama_model_quantize:", "\nllama_model_quantize:").splitlines()
    errors = [ln for ln in lines if "error" in ln.lower() or "requantiz" in ln.lower()
              or "failed" in ln.lower()]
    detail = (errors or [ln for ln in lines if ln.strip()] or ["no output"])[-1].strip()
    raise LeerooError(
        f"llama.cpp could not quantize {src.name} to {key} (exit {proc.returncode}): {detail}"
    )
