"""A request's path never provisions: the server process never imports llama.cpp (the worker
process does) nor huggingface_hub, and a file that is not on this machine is a 503 naming
`leeroo-local pull`, not a download."""

from __future__ import annotations

import json
import subprocess
import sys

from helpers import tiny_expert_toml

SERVE_ONE = """
import json, sys
import leeroo_local.server.app
import httpx
from leeroo_local.catalog import load_catalog
from leeroo_local.runtime.service import Service
from leeroo_local.server import BackgroundServer, ServerSettings, create_app
from leeroo_local.settings import Settings
from leeroo_local.store.requests import RequestLog
from leeroo_local.universe import Member, Universe

tmp, expert = sys.argv[1], sys.argv[2]
svc = Service(Settings(n_threads=1, ram_budget="128MB", keep_alive_s=600),
              catalog=load_catalog(extra=[tmp + "/models.toml"]),
              universe=Universe(members=[Member(expert=expert, quant="F32")], n_ctx=256),
              log=RequestLog(tmp + "/requests.db"), client="serve")
settings = ServerSettings(port=0)
with BackgroundServer(create_app(svc, settings), settings) as srv:
    r = httpx.post(srv.url + "/v1/completions", timeout=120,
                   json={"model": expert, "prompt": "hello", "max_tokens": 4})
svc.close()
print(json.dumps({"status": r.status_code, "body": r.json(),
                  "loaded": [m for m in ("llama_cpp", "huggingface_hub") if m in sys.modules]}))
"""


def _serve_one(tmp_path, expert: str) -> dict:
    out = subprocess.run([sys.executable, "-c", SERVE_ONE, str(tmp_path), expert],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_served_request_leaves_llama_cpp_and_huggingface_hub_out_of_the_server(tmp_path,
                                                                                 tiny_dir):
    (tmp_path / "models.toml").write_text(tiny_expert_toml("tiny-1", tiny_dir, "tiny-1.gguf"))
    seen = _serve_one(tmp_path, "tiny-1")
    assert seen["status"] == 200 and seen["body"]["choices"][0]["text"]
    assert seen["loaded"] == []


def test_a_missing_file_is_a_503_naming_the_pull_command(tmp_path, tiny_dir):
    (tmp_path / "models.toml").write_text(
        tiny_expert_toml("tiny-1", tiny_dir, "tiny-1.gguf").replace(f'folder = "{tiny_dir}"',
                                                                    f'folder = "{tmp_path}"'))
    seen = _serve_one(tmp_path, "tiny-1")
    assert seen["status"] == 503, seen
    assert "leeroo-local pull tiny-1 --quant F32" in seen["body"]["error"]["message"]
    assert seen["loaded"] == []


def test_quantizing_at_start_leaves_llama_cpp_out_of_the_caller(tmp_path, tiny_dir):
    """serve makes a derived expert's file before it listens: the quantizer runs in children."""
    code = ("import sys; from pathlib import Path; "
            "from leeroo_local.backends.quantize import quantize_file; "
            "quantize_file(Path(sys.argv[1]), Path(sys.argv[2]), 'Q8_0'); "
            "print('llama_cpp' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(tiny_dir / "tiny-1.gguf"),
                          str(tmp_path / "q8.gguf")], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "False" and (tmp_path / "q8.gguf").stat().st_size > 0
