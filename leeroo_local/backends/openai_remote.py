"""Experts behind an OpenAI-compatible API (llama-server, vLLM, Ollama, another leeroo-local):
streamed over HTTP with server-sent events, read by httpx-sse.

A `Backend` like the local worker: text pieces, then one `Final`, so the service treats every
expert alike. The energy is the one the server reports (leeroo-local's `leeroo` extension), or
none measured: nothing runs here.
"""

from __future__ import annotations

import json
import os
import threading
from typing import TYPE_CHECKING, Iterator, Literal

from ..catalog import OpenAISource
from ..errors import ContextOverflow, LeerooError, RemoteError, SchemaError
from ..hardware import EnergyReading
from .base import Final, Request

if TYPE_CHECKING:
    import httpx

__all__ = ["RemoteExpert", "RemoteError"]


class RemoteExpert:
    """One expert on an OpenAI-compatible server: a base URL and the model name it knows."""

    where: Literal["remote"] = "remote"
    parallel = 64  # the far side queues or batches; the pool need not serialise for it

    def __init__(self, expert_id: str, source: OpenAISource, extra_sampling: bool = False):
        self.expert_id = expert_id
        self.source = source
        self.pid: int | None = None  # no local process: energy is not measured here
        self._extra_sampling = extra_sampling  # llama-server knows top_k, min_p, repeat_penalty
        self._client: httpx.Client | None = None
        self._closed = False
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

    def _body(self, request: Request) -> tuple[str, dict]:
        s = request.sampling
        body: dict = {"model": self.source.model, "stream": True,
                      "stream_options": {"include_usage": True},
                      "max_tokens": s.max_tokens, "temperature": s.temperature, "top_p": s.top_p}
        if s.stop:
            body["stop"] = s.stop
        if s.seed is not None:
            body["seed"] = s.seed
        if s.json_schema is not None:
            if self._extra_sampling:  # llama-server's own field, honoured on both endpoints
                body["json_schema"] = s.json_schema
            else:
                body["response_format"] = {"type": "json_schema", "json_schema": {
                    "name": "answer", "schema": s.json_schema, "strict": True}}
        if self._extra_sampling:
            body.update({k: getattr(s, k) for k in (
                "top_k", "min_p", "repeat_penalty", "repeat_last_n", "frequency_penalty",
                "presence_penalty")})
        if request.messages is not None:
            body["messages"] = request.messages
            return "/chat/completions", body
        body["prompt"] = request.prompt
        if request.suffix is not None:  # OpenAI's legacy completions take one
            body["suffix"] = request.suffix
        return "/completions", body

    def stream(self, request: Request, cancel: threading.Event | None = None
               ) -> Iterator[str | Final]:
        import httpx
        from httpx_sse import SSEError, connect_sse

        if self._closed:
            raise RemoteError(f"remote expert {self.expert_id}: its client was closed")
        path, body = self._body(request)
        op = request.op
        url = self.source.base_url.rstrip("/") + path
        final = Final(finish_reason="", energy=EnergyReading(
            0.0, "estimated", "remote expert: energy not reported"))
        try:
            with connect_sse(self._http(), "POST", url, json=body, headers=self._headers()) as source:
                if source.response.status_code >= 400:
                    self._fail(source.response)
                for sse in source.iter_sse():
                    if cancel is not None and cancel.is_set():
                        final.finish_reason = "cancelled"
                        break
                    if sse.data == "[DONE]":
                        break
                    if not sse.data:
                        continue
                    event = json.loads(sse.data)
                    for choice in event.get("choices") or []:
                        text = (choice.get("delta") or {}).get("content") if op == "chat" else choice.get("text")
                        if text:
                            yield text
                        if choice.get("finish_reason"):
                            final.finish_reason = choice["finish_reason"]
                    if event.get("usage"):
                        final.prompt_tokens = event["usage"].get("prompt_tokens", 0)
                        final.completion_tokens = event["usage"].get("completion_tokens", 0)
                    reported = (event.get("leeroo") or {}).get("energy") or {}
                    if reported.get("joules") is not None:
                        final.energy = EnergyReading(
                            reported["joules"], reported.get("method", "estimated"),
                            f"reported by the remote server ({reported.get('source', '')})")
        except (httpx.HTTPError, SSEError) as exc:
            raise RemoteError(f"remote expert {self.expert_id} at {self.source.base_url}: "
                              f"{type(exc).__name__}: {exc}") from None
        final.finish_reason = final.finish_reason or "stop"
        yield final

    def loglikelihoods(self, context: str, continuations: list[str]) -> list[float]:
        raise LeerooError(f"{self.expert_id} is remote: log-likelihoods need a local expert")

    def embed(self, texts: list[str]) -> tuple[list[list[float]], int]:
        """The remote server's /embeddings (its model must be an embedding model)."""
        import httpx

        url = self.source.base_url.rstrip("/") + "/embeddings"
        try:
            resp = self._http().post(url, headers=self._headers(), json={
                "model": self.source.model, "input": texts, "encoding_format": "float"})
        except httpx.HTTPError as exc:
            raise RemoteError(f"remote expert {self.expert_id} at {self.source.base_url}: "
                              f"{type(exc).__name__}: {exc}") from None
        if resp.status_code >= 400:
            self._fail(resp)
        body = resp.json()
        data = sorted(body["data"], key=lambda d: d["index"])
        return [d["embedding"] for d in data], int((body.get("usage") or {}).get("prompt_tokens", 0))

    def count_tokens(self, messages: list[dict], tools=None) -> int:
        raise RemoteError(f"{self.expert_id} is remote: an OpenAI-compatible server does not "
                          f"count tokens; name a local expert")

    def health(self) -> bool:
        """True when the server lists its models (GET /models answers 200), until closed."""
        import httpx

        if self._closed:
            return False
        try:
            return self._http().get(self.source.base_url.rstrip("/") + "/models",
                                    headers=self._headers()).status_code == 200
        except httpx.HTTPError:
            return False

    def close(self) -> None:
        with self._lock:
            client, self._client, self._closed = self._client, None, True
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
        if response.status_code == 400 and (error.get("code") == "invalid_json_schema"
                                            or "json_schema" in message):
            # the request's own schema (llama-server: "JSON schema conversion failed")
            raise SchemaError(f"response_format: the JSON schema cannot be followed: {message}")
        raise RemoteError(f"remote expert {self.expert_id} at {self.source.base_url} answered "
                          f"{response.status_code}: {message}")
