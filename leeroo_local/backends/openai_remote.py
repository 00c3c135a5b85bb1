"""Experts behind an OpenAI-compatible API (llama-server, vLLM, Ollama, another leeroo-local):
streamed over HTTP with server-sent events, read by httpx-sse.

A `Backend` like the local worker: the same ("chunk", text) ... ("done", final) messages, so the
service treats every expert alike.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Iterator

from ..catalog import OpenAISource
from ..errors import ContextOverflow, LeerooError, RemoteError

__all__ = ["RemoteExpert", "RemoteError"]


class RemoteExpert:
    """One expert on an OpenAI-compatible server: a base URL and the model name it knows."""

    where = "remote"
    parallel = 64  # the far side queues or batches; the pool need not serialise for it

    def __init__(self, expert_id: str, source: OpenAISource, extra_sampling: bool = False):
        self.expert_id = expert_id
        self.source = source
        self.pid: int | None = None  # no local process: energy is not measured here
        self._extra_sampling = extra_sampling  # llama-server knows top_k, min_p, repeat_penalty
        self._client = None
        self._lock = threading.Lock()

    def _http(self):
        """One client per expert, so a warm connection carries the next request."""
        import httpx

        with self._lock:
            if self._client is None:
                self._client = httpx.Client(timeout=self.source.timeout_s)
            return self._client

    def _headers(self) -> dict:
        headers = {"Content-Type": "application/json"}
        if self.source.api_key_env and os.environ.get(self.source.api_key_env):
            headers["Authorization"] = f"Bearer {os.environ[self.source.api_key_env]}"
        return headers

    def _body(self, op: str, payload, sampling: dict) -> tuple[str, dict]:
        body = {"model": self.source.model, "stream": True,
                "stream_options": {"include_usage": True},
                "max_tokens": sampling.get("max_tokens"), "temperature": sampling.get("temperature"),
                "top_p": sampling.get("top_p")}
        if sampling.get("stop"):
            body["stop"] = sampling["stop"]
        if sampling.get("seed") is not None:
            body["seed"] = sampling["seed"]
        if self._extra_sampling:
            body.update({k: sampling[k] for k in (
                "top_k", "min_p", "repeat_penalty", "repeat_last_n", "frequency_penalty",
                "presence_penalty") if k in sampling})
        if op == "chat":
            body["messages"] = payload
            return "/chat/completions", body
        body["prompt"] = payload
        return "/completions", body

    def stream(self, op: str, payload, sampling: dict,
               cancel: threading.Event | None = None) -> Iterator[tuple[str, dict | str]]:
        import httpx
        from httpx_sse import SSEError, connect_sse

        path, body = self._body(op, payload, sampling)
        url = self.source.base_url.rstrip("/") + path
        final = {"text": "", "finish_reason": None, "prompt_tokens": 0, "completion_tokens": 0}
        try:
            with connect_sse(self._http(), "POST", url, json=body, headers=self._headers()) as source:
                if source.response.status_code >= 400:
                    self._fail(source.response)
                for sse in source.iter_sse():
                    if cancel is not None and cancel.is_set():
                        final["finish_reason"] = "cancelled"
                        break
                    if sse.data == "[DONE]":
                        break
                    if not sse.data:
                        continue
                    event = json.loads(sse.data)
                    for choice in event.get("choices") or []:
                        text = (choice.get("delta") or {}).get("content") if op == "chat" else choice.get("text")
                        if text:
                            yield "chunk", text
                        if choice.get("finish_reason"):
                            final["finish_reason"] = choice["finish_reason"]
                    if event.get("usage"):
                        final["prompt_tokens"] = event["usage"].get("prompt_tokens", 0)
                        final["completion_tokens"] = event["usage"].get("completion_tokens", 0)
                    if event.get("leeroo"):
                        final["remote"] = event["leeroo"]
        except (httpx.HTTPError, SSEError) as exc:
            raise RemoteError(f"remote expert {self.expert_id} at {self.source.base_url}: "
                              f"{type(exc).__name__}: {exc}") from None
        final["finish_reason"] = final["finish_reason"] or "stop"
        yield "done", final

    def loglikelihoods(self, context: str, continuations: list[str]) -> list[float]:
        raise LeerooError(f"{self.expert_id} is remote: log-likelihoods need a local expert")

    def count_tokens(self, messages: list[dict]) -> int:
        raise RemoteError(f"{self.expert_id} is remote: an OpenAI-compatible server does not "
                          f"count tokens; name a local expert")

    def health(self) -> bool:
        """True when the server lists its models (GET /models answers 200)."""
        import httpx

        try:
            return self._http().get(self.source.base_url.rstrip("/") + "/models",
                                    headers=self._headers()).status_code == 200
        except httpx.HTTPError:
            return False

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def _fail(self, response) -> None:
        response.read()
        try:
            error = response.json().get("error") or {}
        except ValueError:
            error = {}
        message = error.get("message") or response.text[:200]
        if response.status_code == 400 and error.get("code") == "context_length_exceeded" or (
                error.get("type") == "exceed_context_size_error"):
            # leeroo-local's server puts the counts beside the message (llama-server: n_prompt_tokens)
            prompt = error.get("prompt_tokens") or error.get("n_prompt_tokens") or 0
            n_ctx = error.get("n_ctx") or 0
            raise ContextOverflow(int(prompt), int(n_ctx), self.expert_id)
        raise RemoteError(f"remote expert {self.expert_id} at {self.source.base_url} answered "
                          f"{response.status_code}: {message}")
