"""What `serve` costs over calling the runtime directly, and what it sustains under concurrency.

Real llama.cpp, on the Gemma starter universe by default (prepared offline on first use) or on
tiny random experts (--tiny). Greedy sampling. llama.cpp reuses the cached prefix of the prompt it
saw last, so both paths get equal footing: the time-to-first-token runs repeat one prompt on both
(cached on both), the concurrency runs give each path its own prompts of the same length. The server runs in this process on 127.0.0.1 (uvicorn in a
thread); clients are the official openai package, each in its own thread.

  1. time to first token, warm expert: Service.chat directly vs through the server (streaming);
     the difference is the server's overhead in ms;
  2. total completion tokens/s with 1, 4 and 16 concurrent streaming clients (spread over the
     universe's experts), through the server and directly (threads on the service);
  3. a cold load through the server: when the stream's first bytes arrive vs the first token;
  4. (--backends) one expert behind `serve` with each local backend (the worker process, and
     llama.cpp's llama-server when one is found: its parallel slots batch concurrent requests):
     aggregate tokens/s and median request seconds at 1 and 8 concurrent clients; and, in one
     run, interleaved, the time to first token (median, p90) of a streamed plain completion on
     llama-cpp-python in-process (Llama.create_completion), llama-cpp-python's own server
     (`python -m llama_cpp.server`, when its extras import; --lcpp-server-path) and `serve`
     (the worker backend) in a process of its own like that server, and in this process
     beside the client, and a server with no model (sse_floor.py: what HTTP, SSE and the
     client cost alone): same prompt, file, threads, all warm (--ttft-only: that alone).

Prints a table; --json FILE writes the numbers. Run: python bench/serve_bench.py [--tiny]
[--backends] (--only-backends: section 4 alone).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's leeroo_local (and tests/ for the tiny experts)

import httpx  # noqa: E402
import openai  # noqa: E402
import psutil  # noqa: E402
import sse_floor  # noqa: E402

from leeroo_local.backends.base import Sampling  # noqa: E402
from leeroo_local.catalog import load_catalog, load_user_catalog  # noqa: E402
from leeroo_local.provision.ensure import ensure_all  # noqa: E402
from leeroo_local.server import BackgroundServer, ServerSettings, create_app  # noqa: E402
from leeroo_local.runtime.service import Result, Service, TextEvent  # noqa: E402
from leeroo_local.settings import load_settings  # noqa: E402
from leeroo_local.store.requests import RequestLog  # noqa: E402
from leeroo_local.universe import Member, Universe, starter_universe  # noqa: E402

FLOOR = "no model: the floor (sse_floor.py)"
PROMPT = "Write a short story about a lighthouse keeper who finds a message in a bottle."


def build_service(args, tmp: Path, **given) -> Service:
    settings = load_settings(n_threads=args.threads or None, keep_alive_s=3600, **given)
    log = RequestLog(tmp / "bench.db")  # keep the user's request log clean
    if not args.tiny:
        universe = starter_universe(args.ctx)
        catalog = load_user_catalog()
        ensure_all(catalog, [(m.expert, m.quant) for m in universe.members])  # assemble, quantize
        return Service(settings, catalog=catalog, universe=universe, log=log, client="bench")
    sys.path.insert(0, str(ROOT / "tests"))
    from helpers import tiny_expert_toml
    from tiny_gguf import write_tiny_llama

    ids = [f"tiny-{i}" for i in (1, 2, 3)]
    for i, expert in enumerate(ids, 1):
        write_tiny_llama(tmp / f"{expert}.gguf", seed=i, name=expert)
    (tmp / "models.toml").write_text("".join(tiny_expert_toml(e, tmp, f"{e}.gguf") for e in ids))
    universe = Universe(members=[Member(expert=e, quant="F32") for e in ids], n_ctx=args.ctx)
    return Service(settings, catalog=load_catalog(extra=[tmp / "models.toml"]), universe=universe,
                   log=log, client="bench")


def messages(i: int = 0) -> list[dict]:
    return [{"role": "user", "content": f"{PROMPT} ({i})"}]


def direct_ttft(service: Service, expert: str, tokens: int, i: int) -> float | None:
    """Seconds from the call to the first piece of text (None if the expert wrote nothing)."""
    started = time.perf_counter()
    first = None
    for event in service.chat(messages(i), expert, Sampling(max_tokens=tokens, temperature=0)):
        if first is None and isinstance(event, TextEvent) and event.text:
            first = time.perf_counter() - started
    return first


def server_ttft(client: openai.OpenAI, expert: str, tokens: int, i: int) -> float | None:
    """The same through the server: from the request to the first chunk with content."""
    started = time.perf_counter()
    first = None
    for chunk in client.chat.completions.create(model=expert, messages=messages(i),
                                                max_tokens=tokens, temperature=0, stream=True):
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter() - started
    return first


def cold_stream(url: str, expert: str, tokens: int) -> dict:
    """A streamed request to a cold expert: first bytes (role chunk/comments) vs first token."""
    started = time.perf_counter()
    first_byte = first_token = None
    body = {"model": expert, "messages": messages(), "max_tokens": tokens, "temperature": 0,
            "stream": True}
    with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=600) as resp:
        for line in resp.iter_lines():
            now = time.perf_counter() - started
            if line and first_byte is None:
                first_byte = now
            if first_token is None and '"content":"' in line and '"content":""' not in line:
                first_token = now
    return {"first_byte_s": first_byte, "first_token_s": first_token}


def concurrent(n: int, experts: list[str], tokens: int, one) -> dict:
    """n threads, one request each (spread over the experts); total completion tokens/s."""
    counts, errors = [0] * n, []

    def run(i):
        try:
            counts[i] = one(experts[i % len(experts)], i)
        except Exception as exc:  # counted, reported in the table
            errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    return {"clients": n, "tokens": sum(counts), "wall_s": wall,
            "tokens_per_s": sum(counts) / wall if wall else 0.0, "errors": errors}


def via_server(client, tokens):
    def one(expert, i):
        chunks = list(client.chat.completions.create(
            model=expert, messages=messages(100 + i), max_tokens=tokens, temperature=0, stream=True,
            stream_options={"include_usage": True}))
        return chunks[-1].usage.completion_tokens
    return one


def via_service(service, tokens):
    def one(expert, i):
        events = list(service.chat(messages(200 + i), expert,
                                   Sampling(max_tokens=tokens, temperature=0)))
        return events[-1].tokens["completion"] if isinstance(events[-1], Result) else 0
    return one


def settle(limit_s: float) -> float:
    """Wait until this process's children (workers, spare workers starting) are idle, at most
    `limit_s`; returns the seconds waited. Each load starts a spare worker that imports
    llama.cpp, which would otherwise compete with the measurements."""
    started = time.perf_counter()
    while time.perf_counter() - started < limit_s:
        children = psutil.Process().children(recursive=True)
        for c in children:
            try:
                c.cpu_percent(None)
            except psutil.Error:
                pass
        time.sleep(0.5)
        busy = 0.0
        for c in children:
            try:
                busy += c.cpu_percent(None)
            except psutil.Error:
                pass
        if busy < 5.0:
            break
    return time.perf_counter() - started


def median_ms(values: list[float | None]) -> float:
    """Median in ms of the requests that produced a token (an expert may stop at once)."""
    values = [v for v in values if v is not None]
    return statistics.median(values) * 1000 if values else float("nan")


def p90_ms(values: list[float | None]) -> float:
    """90th percentile in ms (nearest rank) of the requests that produced a token."""
    values = sorted(v for v in values if v is not None)
    return values[min(len(values) - 1, int(0.9 * len(values)))] * 1000 if values else float("nan")


def in_process(path: str, ctx: int, threads: int):
    """llama-cpp-python alone, in this process: the floor a server's first token is held to.
    Plain completions on every path (its own chat template stops Gemma at once)."""
    import llama_cpp

    threads = threads or None
    llm = llama_cpp.Llama(model_path=path, n_ctx=ctx, n_threads=threads,
                          n_threads_batch=threads, verbose=False)

    def ttft() -> float | None:
        started, first = time.perf_counter(), None
        for chunk in llm.create_completion(PROMPT, max_tokens=4, temperature=0, stream=True):
            if first is None and chunk["choices"][0]["text"]:
                first = time.perf_counter() - started
        return first
    return llm, ttft


def lcpp_server(path: str, ctx: int, threads: int, pythonpath: str):
    """llama-cpp-python's own server (`python -m llama_cpp.server`) on this file in a child
    process: (process, base url), or (None, why not) when its extras do not import."""
    import os
    import socket
    import subprocess

    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (pythonpath, env.get("PYTHONPATH")) if p)
    check = subprocess.run([sys.executable, "-c", "import llama_cpp.server.app"], env=env,
                           capture_output=True, text=True)
    if check.returncode:
        return None, (check.stderr.strip().splitlines() or ["cannot import"])[-1]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", path, "--model_alias", "bench",
           "--n_ctx", str(ctx), "--host", "127.0.0.1", "--port", str(port), "--verbose", "false"]
    if threads:
        cmd += ["--n_threads", str(threads), "--n_threads_batch", str(threads)]
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(url + "/v1/models", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    return None, f"did not start (exit code {proc.poll()})"


def serve_process(args):
    """`serve` in a process of its own (run_server, as `leeroo-local serve` runs it) on the
    bench's service: (process, base url). The client then shares no interpreter with it, as
    with llama-cpp-python's server."""
    import os
    import subprocess

    port_file = Path(tempfile.mkdtemp()) / "port"
    cmd = [sys.executable, __file__, "--serve-child", str(port_file), "--ctx", str(args.ctx),
           "--threads", str(args.threads)] + (["--tiny"] if args.tiny else [])
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=dict(os.environ))
    return proc, sse_floor.wait_for_port(proc, port_file, 120, "serve")


def serve_child(args) -> None:
    """The child of serve_process: serve until SIGTERM, then close the service."""
    from leeroo_local.server import run_server
    from leeroo_local.server.runner import bind

    with tempfile.TemporaryDirectory() as tmp:
        service = build_service(args, Path(tmp))
        settings = ServerSettings(port=0)
        sock = bind(settings.host, 0)
        try:
            Path(args.serve_child).write_text(str(sock.getsockname()[1]))
            run_server(create_app(service, settings), settings, sock, log_level="warning")
        finally:
            service.close()


def completion_ttft(client: openai.OpenAI, expert: str) -> float | None:
    """Seconds to the first text of a streamed plain completion of PROMPT through a server."""
    started, first = time.perf_counter(), None
    for chunk in client.completions.create(model=expert, prompt=PROMPT, max_tokens=4,
                                           temperature=0, stream=True):
        if first is None and chunk.choices and chunk.choices[0].text:
            first = time.perf_counter() - started
    return first


class RawClient:
    """A keep-alive http.client connection that posts the same streamed completion and reads
    the response until the first text: the HTTP path without the openai package's own work
    (request building, SSE and pydantic parsing), to split the client's share from the server's."""

    def __init__(self, url: str, model: str):
        import http.client
        from urllib.parse import urlparse

        u = urlparse(url)
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
        self.body = json.dumps({"model": model, "prompt": PROMPT, "max_tokens": 4,
                                "temperature": 0, "stream": True})

    def ttft(self) -> float | None:
        started, first = time.perf_counter(), None
        self.conn.request("POST", "/v1/completions", self.body,
                          {"Content-Type": "application/json", "Authorization": "Bearer bench"})
        resp = self.conn.getresponse()
        for line in resp:
            if first is None and line.startswith(b"data: {") and b'"text":""' not in line:
                first = time.perf_counter() - started
        return first


def ttft_beside(args, path: str, serve_client: openai.OpenAI, target: str) -> dict:
    """Time to the first token of one streamed plain completion, warm and cached, on each path
    in one run: llama-cpp-python in-process, its own server, and `serve`; interleaved in rounds
    whose order rotates, so every path sees the same machine load. Median and p90 in ms."""
    llm, local = in_process(path, args.ctx, args.threads)
    proc, url = lcpp_server(path, args.ctx, args.threads, args.lcpp_server_path)
    served, served_url = serve_process(args)
    floor, floor_url = sse_floor.start()
    floor_client = openai.OpenAI(base_url=floor_url + "/v1", api_key="bench", max_retries=0,
                                 timeout=600)
    serve_own = openai.OpenAI(base_url=served_url + "/v1", api_key="bench", max_retries=0,
                              timeout=600)
    paths = {"llama-cpp-python in-process": local,
             "leeroo-local serve (own process)": lambda: completion_ttft(serve_own, target),
             "leeroo-local serve (in this process)": lambda: completion_ttft(serve_client, target),
             "leeroo-local serve (own process), raw client": RawClient(served_url, target).ttft,
             FLOOR: lambda: completion_ttft(floor_client, "floor"),
             FLOOR + ", raw client": RawClient(floor_url, "floor").ttft}
    missing = None
    if proc is not None:
        client = openai.OpenAI(base_url=url + "/v1", api_key="bench", max_retries=0, timeout=600)
        paths["llama-cpp-python server"] = lambda: completion_ttft(client, "bench")
        paths["llama-cpp-python server, raw client"] = RawClient(url, "bench").ttft
    else:
        missing = url
    try:
        for measure in paths.values():  # warm each path: its prompt cached, its code paths hot
            for _ in range(3):
                measure()
        settle(args.settle)
        times: dict[str, list] = {name: [] for name in paths}
        names = list(paths)
        for i in range(args.runs):
            for name in names[i % len(names):] + names[:i % len(names)]:
                time.sleep(args.gap_ms / 1000)  # what the previous path left running ends
                times[name].append(paths[name]())
    finally:
        llm.close()
        for child in (proc, served, floor):
            if child is not None:
                child.terminate()
                child.wait(30)
    out = {name: {"median_ms": median_ms(v), "p90_ms": p90_ms(v),
                  "all_ms": [x * 1000 if x is not None else None for x in v]}
           for name, v in times.items()}
    if missing:
        out["llama-cpp-python server"] = {"missing": missing}
    return out


def backend_rows(args, tmp: Path) -> dict:
    """Section 4: each local backend behind `serve`, one expert, 1 and 8 concurrent clients;
    with the worker backend, time to first token beside llama-cpp-python (ttft_beside)."""
    from leeroo_local.backends.llama_server import find_llama_server

    backends = ["worker"] + (["llama-server"] if find_llama_server(args.llama_server) else [])
    backends = [b for b in backends if b not in args.skip.split(",")]
    rows = {}
    for backend in backends:
        service = build_service(args, tmp, local_backend=backend,
                                llama_server=args.llama_server or None,
                                llama_server_args=args.llama_server_args.split() or None)
        target = service.universe.ids()[0]
        settings = ServerSettings(port=0)
        try:
            with BackgroundServer(create_app(service, settings), settings) as srv:
                client = openai.OpenAI(base_url=srv.url + "/v1", api_key="bench", max_retries=0,
                                       timeout=600)
                server_ttft(client, target, 2, 0)  # load it
                settle(args.settle)
                if backend == "worker":
                    path = str(service.local_file(target, service.universe.members[0].quant))
                    rows["ttft"] = ttft_beside(args, path, client, target)
                ttft = [completion_ttft(client, target) for _ in range(args.runs)]
                levels = {}
                if not args.ttft_only:
                    for n in (1, 8):
                        walls: list[float] = []

                        def one(expert, i, walls=walls):
                            started = time.perf_counter()
                            tokens = via_server(client, 16)(expert, 300 + i)
                            walls.append(time.perf_counter() - started)
                            return tokens
                        row = concurrent(n, [target], 16, one)
                        row["median_request_s"] = statistics.median(walls) if walls else float("nan")
                        levels[n] = row
                rows[backend] = {"ttft_ms": median_ms(ttft), "clients": levels}
        finally:
            service.close()
    return rows


def own_share(ttft: dict, suffix: str) -> float | None:
    """`serve`'s own share of its time to first token (median ms): what it takes over
    llama-cpp-python in-process and over the floor (HTTP, SSE and the client with no work)."""
    try:
        return (ttft["leeroo-local serve (own process)" + suffix]["median_ms"]
                - ttft["llama-cpp-python in-process"]["median_ms"]
                - ttft[FLOOR + suffix]["median_ms"])
    except KeyError:
        return None


def print_backends(rows: dict) -> None:
    if "ttft" in rows:
        print(f"{'time to first token, one run, interleaved':<50}{'median ms':>11}{'p90 ms':>9}")
        for name, row in rows["ttft"].items():
            if "missing" in row:
                print(f"{'  ' + name:<50}  not run: {row['missing']}")
            else:
                print(f"{'  ' + name:<50}{row['median_ms']:>11.1f}{row['p90_ms']:>9.1f}")
        for client, suffix in (("openai client", ""), ("raw client", ", raw client")):
            share = own_share(rows["ttft"], suffix)
            if share is not None:
                print(f"{'  serve over in-process + floor, ' + client:<50}{share:>11.1f}")
    print(f"{'one expert behind serve':<26}{'TTFT ms':>9}{'1 client tok/s':>16}"
          f"{'8 clients tok/s':>17}{'8: median req s':>17}{'errors':>8}")
    for name, row in rows.items():
        if name == "ttft":
            continue
        if not row["clients"]:
            print(f"{'  ' + name:<26}{row['ttft_ms']:>9.1f}")
            continue
        one, eight = row["clients"][1], row["clients"][8]
        print(f"{'  ' + name:<26}{row['ttft_ms']:>9.1f}{one['tokens_per_s']:>16.1f}"
              f"{eight['tokens_per_s']:>17.1f}{eight['median_request_s']:>17.2f}"
              f"{len(one['errors']) + len(eight['errors']):>8}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true", help="tiny random experts instead of Gemma")
    ap.add_argument("--tokens", type=int, default=32, help="tokens per request")
    ap.add_argument("--runs", type=int, default=10, help="requests per TTFT measurement")
    ap.add_argument("--settle", type=float, default=60.0,
                    help="most seconds to wait for the workers to go idle after loading")
    ap.add_argument("--ctx", type=int, default=2048, help="context per expert")
    ap.add_argument("--threads", type=int, default=0, help="llama.cpp threads (0: default)")
    ap.add_argument("--clients", default="1,4,16", help="concurrency levels")
    ap.add_argument("--json", dest="json_out", help="write the numbers to this file")
    ap.add_argument("--backends", action="store_true", help="also section 4 (local backends)")
    ap.add_argument("--only-backends", action="store_true", help="section 4 alone")
    ap.add_argument("--skip", default="", help="section 4: backends to leave out (comma list)")
    ap.add_argument("--llama-server", default="", help="llama-server binary (default: PATH)")
    ap.add_argument("--llama-server-args", default="", help="more llama-server arguments")
    ap.add_argument("--lcpp-server-path", default="",
                    help="section 4: a folder put first on PYTHONPATH for llama-cpp-python's "
                         "server (where its extras, sse-starlette and starlette-context, are)")
    ap.add_argument("--gap-ms", type=float, default=0.0,
                    help="time to first token: idle ms before each measurement")
    ap.add_argument("--ttft-only", action="store_true",
                    help="section 4: time to first token alone, no concurrency runs")
    ap.add_argument("--serve-child", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_child:
        serve_child(args)
        return
    if args.only_backends:
        with tempfile.TemporaryDirectory() as tmp:
            rows = backend_rows(args, Path(tmp))
        print_backends(rows)
        if args.json_out:
            Path(args.json_out).write_text(json.dumps({"backends": rows, "tiny": args.tiny,
                                                       "threads": args.threads}, indent=2))
        return

    with tempfile.TemporaryDirectory() as tmp:
        service = build_service(args, Path(tmp))
        experts = service.universe.ids()
        settings = ServerSettings(port=0)
        try:
            with BackgroundServer(create_app(service, settings), settings) as srv:
                client = openai.OpenAI(base_url=srv.url + "/v1", api_key="bench", max_retries=0,
                                       timeout=600)
                for expert in experts:  # load every expert
                    direct_ttft(service, expert, 2, 0)
                settled = settle(args.settle)
                target = experts[0]
                # One prompt for every TTFT run: llama.cpp reuses the cached prompt the same way
                # on both paths, so the difference is the server's. Interleaved, order alternating,
                # so both paths see the same machine load.
                direct, served = [], []
                for i in range(args.runs):
                    pair = [lambda: direct.append(direct_ttft(service, target, 4, 0)),
                            lambda: served.append(server_ttft(client, target, 4, 0))]
                    for measure in (pair if i % 2 == 0 else pair[::-1]):
                        measure()
                levels = [int(c) for c in args.clients.split(",")]
                load = [{"server": concurrent(c, experts, args.tokens, via_server(client, args.tokens)),
                         "direct": concurrent(c, experts, args.tokens, via_service(service, args.tokens))}
                        for c in levels]
                service.pool().unload(f"{target}:{service.universe.members[0].quant}")
                cold = cold_stream(srv.url, target, 4)
                cold["load_s"] = service.log.recent(1)[0]["load_s"]
        finally:
            service.close()

    out = {"experts": experts, "tiny": args.tiny, "tokens": args.tokens, "runs": args.runs,
           "ttft_ms": {"direct": median_ms(direct), "server": median_ms(served),
                       "overhead": median_ms(served) - median_ms(direct),
                       "direct_all": [d * 1000 if d is not None else None for d in direct],
                       "server_all": [s * 1000 if s is not None else None for s in served]},
           "cold": cold, "concurrency": load, "settled_s": settled,
           "load_average": list(psutil.getloadavg()), "cpus": psutil.cpu_count()}
    print(f"experts: {', '.join(experts)}   ({args.tokens} tokens per request; load average "
          f"{out['load_average'][0]:.1f} on {out['cpus']} CPUs)")
    print(f"{'time to first token (warm ' + experts[0] + ')':<44}{'median ms':>12}")
    print(f"{'  Service.chat directly':<44}{out['ttft_ms']['direct']:>12.1f}")
    print(f"{'  through the server (openai client, SSE)':<44}{out['ttft_ms']['server']:>12.1f}")
    print(f"{'  server overhead':<44}{out['ttft_ms']['overhead']:>12.1f}")
    print(f"cold load via the server: first bytes {cold['first_byte_s'] * 1000:.0f} ms, "
          f"first token {cold['first_token_s'] * 1000:.0f} ms (load {cold['load_s'] * 1000:.0f} ms)")
    print(f"{'clients':>8}{'server tok/s':>14}{'direct tok/s':>14}{'server wall s':>15}{'errors':>8}")
    for row in load:
        s, d = row["server"], row["direct"]
        print(f"{s['clients']:>8}{s['tokens_per_s']:>14.1f}{d['tokens_per_s']:>14.1f}"
              f"{s['wall_s']:>15.2f}{len(s['errors']) + len(d['errors']):>8}")
    if args.backends:
        with tempfile.TemporaryDirectory() as tmp:
            out["backends"] = backend_rows(args, Path(tmp))
        print_backends(out["backends"])
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
