"""An expert served by llama.cpp's own `llama-server`, started here on 127.0.0.1.

What the worker process cannot do: llama-server has parallel slots with continuous batching, so
concurrent requests for one expert are decoded together instead of one after another. The pool
loads it like a worker (`load`, `alive`, `stop`) and admits `parallel` requests at once; requests
go over its OpenAI-compatible API, through the same client as a remote expert.

The KV cache is unified (`--kv-unified`): the slots share one cache of the universe's context, so
the expert takes the memory the planner predicts for the worker; concurrent long prompts share it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Iterator, Literal

from .. import paths
from ..catalog import OpenAISource
from ..errors import (ConfigError, CorruptModel, ExpertCrashed, MissingCapability, RemoteError,
                      SchemaError)
from ..capabilities import EMBEDDINGS, from_header
from ..hardware import physical_cores
from ..gguf_info import read_gguf
from ..limits import seed32
from ..toolcalls import Tools, forced_call, has_tool_turns, render_chat
from .base import Final, Request
from .openai_remote import RemoteExpert

DEFAULT_PARALLEL = 8


def find_llama_server(configured: str = "") -> str | None:
    """The llama-server binary: the configured path, else `llama-server` on PATH, else the
    newest one `leeroo-local llama-server build` made in $LEEROO_HOME/bin; None if none."""
    if configured:
        path = Path(configured).expanduser()
        return str(path) if path.is_file() and os.access(path, os.X_OK) else None
    on_path = shutil.which("llama-server")
    if on_path:
        return on_path
    built = sorted((p for p in (paths.home() / "bin").glob("llama-server-*")
                    if p.is_file() and os.access(p, os.X_OK) and not p.name.endswith(".partial")),
                   key=lambda p: p.stat().st_mtime)
    return str(built[-1]) if built else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaServer:
    """One llama-server process serving one expert file; a `Backend` once loaded."""

    where: Literal["server"] = "server"
    gpu_offload = False  # not asked of the binary: give it a VRAM budget only if it was built so

    def __init__(self, binary: str = "", parallel: int = DEFAULT_PARALLEL,
                 startup_timeout_s: float = 120.0, args: list[str] | None = None):
        found = find_llama_server(binary)
        if found is None:
            raise ConfigError(f"llama-server not found ({binary or 'not on PATH'}): install "
                              "llama.cpp's server or set llama_server to its path")
        self.binary = found
        self.parallel = parallel
        self.startup_timeout_s = startup_timeout_s
        self.args = list(args or [])
        self.process: subprocess.Popen | None = None
        self.pid: int | None = None
        self.loaded: dict | None = None
        self._threads: tuple[int, int] | None = None
        self._client: RemoteExpert | None = None
        self._template: tuple[str, str, str] | None = None  # chat template, BOS and EOS text
        self._path = Path()

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Nothing to wait for before a load (the pool asks this of every backend)."""

    def load(self, path: str, n_ctx: int, n_threads: int = 0, n_gpu_layers: int = 0, *,
             n_threads_batch: int = 0, prompt_cache_bytes: int = 0,
             draft: str | None = None) -> dict:
        """Start the server on a free loopback port and wait until it answers /health. Its slots
        keep each conversation's prompt (cache_prompt), so `prompt_cache_bytes` is not used."""
        started = time.perf_counter()
        port = _free_port()
        threads = n_threads or physical_cores()
        batch_threads = n_threads_batch or threads
        self._threads = (threads, batch_threads)
        log_dir = paths.home() / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        self._log_file = log_dir / "llama-server.log"
        self._path = Path(path)
        self._template = None
        cmd = [self.binary, "-m", str(path), "--host", "127.0.0.1", "--port", str(port),
               "-c", str(n_ctx), "-np", str(self.parallel), "--kv-unified", "--cont-batching",
               "-t", str(threads), "-tb", str(batch_threads), "-ngl", str(n_gpu_layers),
               "--no-webui", "--no-warmup", "-a", Path(path).stem, *self.args]
        if EMBEDDINGS in from_header(Path(path)):
            cmd.append("--embeddings")
        if draft == "ngram":  # prompt lookup: drafts copied from what the prompt already holds
            cmd += ["--spec-type", "ngram-simple"]
        elif draft:  # a smaller model of the same tokenizer drafts, this one verifies
            cmd += ["-md", draft, "-ngld", str(n_gpu_layers), "-td", str(threads),
                    "-tbd", str(batch_threads)]
        with self._log_file.open("ab") as log:
            self.process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        self.pid = self.process.pid
        base = f"http://127.0.0.1:{port}"
        self._client = RemoteExpert(Path(path).stem, OpenAISource(
            kind="openai", base_url=base + "/v1", model=Path(path).stem, timeout_s=600),
            extra_sampling=True)
        self._wait_healthy(base, path)
        self.loaded = {"load_s": time.perf_counter() - started, "n_ctx": n_ctx,
                       "n_gpu_layers": n_gpu_layers, "parallel": self.parallel, "draft": draft}
        return self.loaded

    def _wait_healthy(self, base: str, path) -> None:
        import httpx

        assert self.process is not None  # started by load()
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise CorruptModel(f"llama-server could not load {path} (exit code "
                                   f"{self.process.returncode}): {self._log_tail()}")
            try:
                if httpx.get(base + "/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.02)
        self.stop()
        raise ExpertCrashed(f"llama-server did not become ready in {self.startup_timeout_s:.0f} s")

    def _log_tail(self, lines: int = 4) -> str:
        try:
            text = self._log_file.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return ""
        return " | ".join(line.strip() for line in text[-lines:])

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def health(self) -> bool:
        return self.alive() and self._client is not None and self._client.health()

    def stream(self, request: Request, cancel: threading.Event | None = None
               ) -> Iterator[str | Final]:
        if not self.alive() or self._client is None:
            raise ExpertCrashed(f"llama-server (pid {self.pid}) died")
        original = request
        request, prefill = self._adapted(request)
        try:
            if prefill:
                yield prefill  # the forced call's opening, written into the prompt
            events = (self._infill(request, cancel) if request.suffix is not None
                      else self._client.stream(request, cancel))
            for event in events:
                if isinstance(event, Final):
                    event.energy = None  # it runs here: its process is measured, by its pid
                    event.threads = self._threads
                yield event
        except ExpertCrashed:
            raise
        except SchemaError as exc:
            if original.tools is None or not original.tools.forced:
                raise
            raise SchemaError(str(exc).replace("response_format:", "tools: a function's "
                                               "parameters:", 1), field="tools") from None
        except Exception:
            if not self.alive():
                code = self.process.returncode if self.process else None
                raise ExpertCrashed(f"llama-server (pid {self.pid}) died "
                                    f"(exit code {code})") from None
            raise

    def _infill(self, request: Request, cancel: threading.Event | None) -> Iterator[str | Final]:
        """Fill in the middle with the server's own /infill (its FIM tokens, its format)."""
        import httpx

        assert self._client is not None
        s = request.sampling
        body = {"input_prefix": request.prompt or "", "input_suffix": request.suffix,
                "n_predict": s.max_tokens, "temperature": s.temperature, "top_p": s.top_p,
                "top_k": s.top_k, "min_p": s.min_p, "repeat_penalty": s.repeat_penalty,
                "repeat_last_n": s.repeat_last_n, "stop": s.stop, "stream": True,
                "cache_prompt": True, **({"seed": s.seed} if s.seed is not None else {})}
        base = self._client.source.base_url.removesuffix("/v1")
        final = Final(finish_reason="stop")
        try:
            with httpx.stream("POST", base + "/infill", json=body, timeout=600) as resp:
                if resp.status_code >= 400:
                    message = resp.read().decode("utf-8", "replace")[:300]
                    if "fim" in message.lower() or "infill" in message.lower():
                        raise MissingCapability(f"suffix: llama-server cannot fill in the middle "
                                                f"with this expert: {message}", field="suffix")
                    raise RemoteError(f"llama-server /infill answered {resp.status_code}: {message}")
                for line in resp.iter_lines():
                    if cancel is not None and cancel.is_set():
                        final.finish_reason = "cancelled"
                        break
                    if not line.startswith("data: "):
                        continue
                    event = json.loads(line[6:])
                    if event.get("content"):
                        yield event["content"]
                    if event.get("stop"):
                        final.prompt_tokens = event.get("tokens_evaluated", 0)
                        final.completion_tokens = event.get("tokens_predicted", 0)
                        limited = event.get("stop_type") == "limit" or (
                            final.completion_tokens >= s.max_tokens)
                        final.finish_reason = "length" if limited else "stop"
        except httpx.HTTPError as exc:
            raise RemoteError(f"llama-server (pid {self.pid}) /infill: {exc}") from None
        yield final

    def _adapted(self, request: Request) -> tuple[Request, str]:
        """As the worker does: a penalty window within the context, the seed's low 32 bits. A
        chat with a JSON schema is rendered here and completed: the chat endpoint puts the
        template's generation prompt inside the schema's grammar, which fails on some
        templates. A chat with tools (or calls and results in its history) is rendered by
        toolcalls.render, as the worker renders it, and completed; a forced call's opening
        (returned beside the request) goes into the prompt and its JSON is held to a schema."""
        s = request.sampling
        n_ctx = (self.loaded or {}).get("n_ctx", s.repeat_last_n)
        update: dict = {"repeat_last_n": min(s.repeat_last_n, n_ctx)}
        if s.seed is not None:
            update["seed"] = seed32(s.seed)
        sampling = s.model_copy(update=update)
        if request.messages is not None and (request.tools is not None
                                             or has_tool_turns(request.messages)):
            prompt, prefill, schema = self._render_tools(request.messages, request.tools)
            if schema is not None:
                sampling = sampling.model_copy(update={"json_schema": schema})
            return Request(sampling=sampling, prompt=prompt + prefill), prefill
        if request.messages is not None and s.json_schema is not None:
            return Request(sampling=sampling, prompt=self._apply_template(request.messages)), ""
        return dataclasses.replace(request, sampling=sampling), ""

    def _render_tools(self, messages: list[dict], tools: Tools | None
                      ) -> tuple[str, str, dict | None]:
        """(the prompt, a forced call's opening, its schema) from the GGUF's own template."""
        template, bos, eos = self._template_facts()
        prompt = render_chat(template, messages, list(tools.functions) if tools else None,
                             bos_token=bos, eos_token=eos)
        if bos and prompt.startswith(bos):
            prompt = prompt[len(bos):]  # the server adds BOS itself when the vocabulary asks
        if tools is None or not tools.forced:
            return prompt, "", None
        forced = forced_call(template, tools)
        return prompt, forced.prefill, forced.schema

    def _template_facts(self) -> tuple[str, str, str]:
        if self._template is None:
            template = read_gguf(self._path).metadata.get("tokenizer.chat_template")
            if not isinstance(template, str) or not template:
                raise MissingCapability(f"tools: {self._path.name} has no chat template to "
                                        f"render tools with", field="tools")
            props = self._get("/props")
            self._template = (template, str(props.get("bos_token") or ""),
                              str(props.get("eos_token") or ""))
        return self._template

    def _get(self, path: str) -> dict:
        import httpx

        if self._client is None:
            raise ExpertCrashed(f"llama-server (pid {self.pid}) is not running")
        base = self._client.source.base_url.removesuffix("/v1")
        try:
            return httpx.get(base + path, timeout=60).raise_for_status().json()
        except httpx.HTTPError as exc:
            raise RemoteError(f"llama-server (pid {self.pid}) {path}: {exc}") from None

    def embed(self, texts: list[str]) -> tuple[list[list[float]], int]:
        """Its /v1/embeddings (started with --embeddings for an embedding model)."""
        if self._client is None:
            raise ExpertCrashed(f"llama-server (pid {self.pid}) is not running")
        return self._client.embed(texts)

    def count_tokens(self, messages: list[dict], tools: Tools | None = None) -> int:
        """The server's own chat template, then its tokenizer (/apply-template, /tokenize); a
        conversation with tools as the worker renders it."""
        if tools is not None or has_tool_turns(messages):
            prompt, prefill, _ = self._render_tools(messages, tools)
            prompt += prefill
        else:
            prompt = self._apply_template(messages)
        return len(self._post("/tokenize", {"content": prompt, "add_special": True})["tokens"])

    def _apply_template(self, messages: list[dict]) -> str:
        return self._post("/apply-template", {"messages": messages})["prompt"]

    def _post(self, path: str, body: dict) -> dict:
        import httpx

        if self._client is None:
            raise ExpertCrashed(f"llama-server (pid {self.pid}) is not running")
        base = self._client.source.base_url.removesuffix("/v1")
        try:
            return httpx.post(base + path, json=body, timeout=60).raise_for_status().json()
        except httpx.HTTPError as exc:
            raise RemoteError(f"llama-server (pid {self.pid}) {path}: {exc}") from None

    def loglikelihoods(self, context: str, continuations: list[str]) -> list[float]:
        from ..errors import LeerooError

        raise LeerooError("the llama-server backend does not score log-likelihoods: "
                          "self-play needs the worker backend")

    def close(self) -> None:
        self.stop()

    def stop(self, timeout: float = 5.0) -> None:
        """Terminate the server; kill it if it does not exit. Its memory goes back."""
        if self._client is not None:
            self._client.close()
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
