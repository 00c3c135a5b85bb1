"""The floor under any server's time to first token: a server that streams a fixed completion
at once, with no model and no work, on the same stack `serve` uses (uvicorn, h11, asyncio, a
127.0.0.1 socket with TCP_NODELAY). Its time to first token is what HTTP, SSE and the client
cost alone; serve_bench.py times it beside `serve`, so that a server's own share is its time
minus in-process minus this floor.

Run by serve_bench.py as `python bench/sse_floor.py PORT_FILE` (the port goes to the file).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_FIRST = (b'data: {"id":"cmpl-floor","object":"text_completion","created":0,"model":"floor",'
          b'"choices":[{"index":0,"text":"","finish_reason":null}]}\n\n'
          b'data: {"id":"cmpl-floor","object":"text_completion","created":0,"model":"floor",'
          b'"choices":[{"index":0,"text":" Once","finish_reason":null}]}\n\n')
_LAST = (b'data: {"id":"cmpl-floor","object":"text_completion","created":0,"model":"floor",'
         b'"choices":[{"index":0,"text":"","finish_reason":"stop"}]}\n\ndata: [DONE]\n\n')


async def app(scope, receive, send) -> None:
    """Read the request, answer a streamed completion: an opening chunk and one word, then the
    end, as `serve` frames them (its opening and first token go in one write)."""
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/event-stream; charset=utf-8")]})
    await send({"type": "http.response.body", "body": _FIRST, "more_body": True})
    await send({"type": "http.response.body", "body": _LAST})


def start() -> tuple[subprocess.Popen, str]:
    """The floor server in a child process: (process, base url)."""
    port_file = Path(tempfile.mkdtemp()) / "port"
    proc = subprocess.Popen([sys.executable, __file__, str(port_file)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, wait_for_port(proc, port_file, 60, "the floor server")


def wait_for_port(proc: subprocess.Popen, port_file: Path, timeout_s: float, what: str) -> str:
    """The base url of a child server once it has written its port to `port_file`; if it exits
    or times out first, kill it and raise."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        if port_file.exists() and port_file.read_text().strip():
            return f"http://127.0.0.1:{port_file.read_text().strip()}"
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"{what} did not start (exit code {proc.poll()})")


def main() -> None:
    sys.path.insert(0, str(ROOT))
    import uvicorn

    from leeroo_local.server.runner import bind

    sock = bind("127.0.0.1", 0)
    Path(sys.argv[1]).write_text(str(sock.getsockname()[1]))
    config = uvicorn.Config(app, http="h11", loop="asyncio", lifespan="off", log_level="warning")
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
