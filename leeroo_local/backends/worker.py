"""One expert in its own process, so unloading really returns its memory to the system.

llama.cpp does not always give memory back on close(); a process that exits does. A worker is
`python -m leeroo_local.backends.worker FD`, a fresh interpreter (not multiprocessing's spawn, which
re-runs the parent's main script in the child and breaks under embedders: stdin scripts, TUIs
that replace stderr). Its stdout and stderr, where llama.cpp prints, go to
$LEEROO_HOME/logs/workers.log, never over a terminal UI. The parent talks to it over a socket
pair wrapped in a multiprocessing Connection, with small tuples:

    parent -> worker   ("load", path, n_ctx, n_threads, n_gpu_layers, n_threads_batch,
                        prompt_cache_bytes, draft)
                       ("generate", Request)
                       ("loglik", context, [continuations])
                       ("count", messages, tools)  (prompt tokens of a conversation)
                       ("embed", [texts])  (an embedding model's vectors)
                       ("more",)  (after the first chunk of a stream: go on)
                       ("cancel",)  (between tokens of a stream)
                       ("exit",)
    worker -> parent   ("ready", pid, {"gpu_offload": bool}) once imported, ("loaded", load_info_dict),
                       ("chunk", text), ("done", Final), ("result", value),
                       ("error", error_class_name, message, extra_dict)

A worker is started (and llama_cpp imported) before it is needed, so a cold load costs the model
load, not a Python start.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Literal

from .. import errors, paths
from ..errors import ExpertCrashed, LeerooError
from ..toolcalls import Tools
from .base import Final, Request

if TYPE_CHECKING:
    from .llama_cpp import LlamaCppModel  # the child imports it; the parent never does

# The folder holding the leeroo_local package: the child imports this very copy of it.
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[1])


def _serve(conn: Connection) -> None:
    """The worker's main loop (runs in the child process)."""
    from .llama_cpp import LlamaCppModel, supports_gpu_offload, warm_up

    warm_up()  # import llama.cpp and load its backends now, not during the first request
    conn.send(("ready", os.getpid(), {"gpu_offload": supports_gpu_offload()}))
    model = None
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        op = msg[0]
        try:
            if op == "exit":
                return
            if op == "load":
                _, path, n_ctx, n_threads, n_gpu_layers, n_threads_batch, cache_bytes, draft = msg
                model = LlamaCppModel(path, n_ctx=n_ctx, n_threads=n_threads or None,
                                      n_gpu_layers=n_gpu_layers,
                                      n_threads_batch=n_threads_batch or None,
                                      prompt_cache_bytes=cache_bytes, draft=draft)
                conn.send(("loaded", dataclasses.asdict(model.info)))
            elif op == "generate":
                request: Request = msg[1]
                loaded = _loaded(model)
                if request.messages is not None:
                    stream = loaded.chat(request.messages, request.sampling, request.tools)
                elif request.suffix is not None:
                    stream = loaded.infill(request.prompt or "", request.suffix, request.sampling)
                else:
                    stream = loaded.complete(request.prompt or "", request.sampling)
                sent = 0
                for chunk in stream:
                    if conn.poll() and conn.recv()[0] == "cancel":
                        _cancelled(conn, stream, sent)
                        break
                    if chunk.finish_reason:
                        conn.send(("done", Final(chunk.finish_reason, chunk.prompt_tokens,
                                                 chunk.completion_tokens,
                                                 cached_tokens=chunk.cached_tokens,
                                                 threads=(loaded.info.n_threads,
                                                          loaded.info.n_threads_batch))))
                        continue
                    conn.send(("chunk", chunk.text))
                    sent += 1
                    # After the first chunk, wait for the parent's "more" (or "cancel"): the next
                    # token is not computed while the first is on its way to the client, which
                    # on a machine without spare cores it would slow (see Worker.stream).
                    if sent == 1:
                        reply = conn.recv()[0]
                        if reply == "exit":
                            return
                        if reply == "cancel":
                            _cancelled(conn, stream, sent)
                            break
            elif op == "loglik":
                conn.send(("result", _loaded(model).loglikelihoods(msg[1], msg[2])))
            elif op == "embed":
                conn.send(("result", _loaded(model).embed(msg[1])))
            elif op == "count":
                conn.send(("result", len(_loaded(model).render_chat(msg[1], msg[2])[0])))
            elif op in ("cancel", "more"):
                continue  # arrived after the stream ended
            else:
                conn.send(("error", "LeerooError", f"unknown worker operation {op!r}", {}))
        except LeerooError as exc:
            extra = {k: v for k, v in vars(exc).items() if isinstance(v, (int, str, float))}
            conn.send(("error", type(exc).__name__, str(exc), extra))
        except Exception as exc:  # report, keep serving: the parent decides what to do
            conn.send(("error", "LeerooError", f"{type(exc).__name__}: {exc}", {}))


def _loaded(model: LlamaCppModel | None) -> LlamaCppModel:
    if model is None:
        raise LeerooError("no expert is loaded in this worker")
    return model


def _cancelled(conn: Connection, stream, sent: int) -> None:
    stream.close()  # stops sampling; llama.cpp's state stays reusable
    conn.send(("done", Final("cancelled", completion_tokens=sent)))


def _raise(name: str, message: str, extra: dict) -> None:
    cls: type[LeerooError] = getattr(errors, name, LeerooError)
    if cls is errors.ContextOverflow:
        raise errors.ContextOverflow(extra.get("prompt_tokens", 0), extra.get("n_ctx", 0))
    if issubclass(cls, errors.FieldError):  # the request field at fault
        raise cls(message, field=str(extra.get("field", "")))
    raise cls(message)


class Worker:
    """The parent's handle on one worker process, a `Backend` (backends/base.py). Not
    thread-safe: the pool serialises use (one request at a time)."""

    where: Literal["process"] = "process"
    parallel = 1

    def __init__(self) -> None:
        ours, theirs = socket.socketpair()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            p for p in (_PACKAGE_ROOT, os.environ.get("PYTHONPATH")) if p)}
        log_dir = paths.home() / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        with (log_dir / "workers.log").open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "leeroo_local.backends.worker", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                env=env)
        theirs.close()
        self._conn = Connection(ours.detach())
        self.pid: int | None = None
        self.gpu_offload = False
        self.started_at = time.perf_counter()
        self.loaded: dict | None = None
        self._lock = threading.Lock()

    def _recv(self, timeout: float | None = None):
        try:
            if timeout is not None and not self._conn.poll(timeout):
                raise ExpertCrashed("the expert worker did not answer in time")
            return self._conn.recv()
        except (EOFError, OSError):
            raise self._died() from None

    def _died(self) -> ExpertCrashed:
        self._wait(1)
        return ExpertCrashed(f"the expert worker (pid {self.process.pid}) died "
                             f"(exit code {self.process.returncode})")

    def _wait(self, timeout: float) -> bool:
        """True when the process has exited within `timeout` seconds."""
        try:
            self.process.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def _send(self, msg) -> None:
        try:
            self._conn.send(msg)
        except (OSError, BrokenPipeError, ValueError):
            raise self._died() from None

    def wait_ready(self, timeout: float = 60.0) -> None:
        if self.pid is None:
            msg = self._recv(timeout)
            self.pid, self.gpu_offload = msg[1], bool(msg[2].get("gpu_offload"))

    def alive(self) -> bool:
        return self.process.poll() is None

    def load(self, path: str, n_ctx: int, n_threads: int = 0, n_gpu_layers: int = 0, *,
             n_threads_batch: int = 0, prompt_cache_bytes: int = 0,
             draft: str | None = None) -> dict:
        """`draft`: "ngram" (prompt lookup) runs here; a draft model's file is ignored (the
        llama-server backend has it: llama-cpp-python's draft models keep every position's
        logits, gigabytes for a large vocabulary)."""
        self.wait_ready()
        self._send(("load", str(path), n_ctx, n_threads, n_gpu_layers, n_threads_batch,
                    prompt_cache_bytes, "ngram" if draft == "ngram" else None))
        msg = self._recv()
        if msg[0] == "error":
            _raise(*msg[1:])
        self.loaded = msg[1]
        return msg[1]

    def stream(self, request: Request, cancel: threading.Event | None = None
               ) -> Iterator[str | Final]:
        """Yield the text pieces, then the Final, from the worker; cancel on request.

        The worker computes nothing past its first chunk until the caller asks for the next
        message (this sends "more"): the time to first token is the time until the first token
        reaches the client, and a second token decoded meanwhile would take the cores that
        delivering the first needs (the server's threads, the client) where there are no spare
        ones. Every later token streams without waiting.
        """
        self._send(("generate", request))
        cancel_sent = False
        chunks = 0
        while True:
            if cancel is not None and cancel.is_set() and not cancel_sent:
                self._send(("cancel",))
                cancel_sent = True
            elif chunks == 1 and not cancel_sent:
                self._send(("more",))
            msg = self._recv()
            if msg[0] == "error":
                _raise(*msg[1:])
            yield msg[1]
            if msg[0] == "done":
                return
            chunks += 1

    def call(self, op: str, *args):
        self._send((op, *args))
        msg = self._recv()
        if msg[0] == "error":
            _raise(*msg[1:])
        return msg[1]

    def loglikelihoods(self, context: str, continuations: list[str]) -> list[float]:
        return self.call("loglik", context, continuations)

    def count_tokens(self, messages: list[dict], tools: Tools | None = None) -> int:
        return self.call("count", messages, tools)

    def embed(self, texts: list[str]) -> tuple[list[list[float]], int]:
        vectors, count = self.call("embed", texts)
        return vectors, count

    def health(self) -> bool:
        return self.alive()

    def close(self) -> None:
        self.stop()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the worker to exit; kill it if it does not. Its memory goes back to the system."""
        try:
            self._conn.send(("exit",))
        except (OSError, BrokenPipeError):
            pass
        if not self._wait(timeout):
            self.process.kill()
            self._wait(timeout)
        self._conn.close()


if __name__ == "__main__":  # the worker process: python -m leeroo_local.backends.worker FD
    _serve(Connection(int(sys.argv[1])))
