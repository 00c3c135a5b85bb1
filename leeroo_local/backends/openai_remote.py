"""Experts on another machine behind an OpenAI-compatible API (llama-server, vLLM, Ollama,
another leeroo-local): streamed over HTTP with server-sent events.

Yields the same ("chunk", text) ... ("done", final) messages as a local worker, so the service
treats both alike.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Iterator

from ..catalog import OpenAISource
from ..errors import ContextOverflow, LeerooError


class RemoteError(LeerooError):
    """The remote expert's server could not be reached or refused the request."""

    exit_code = 5


class RemoteExpert:
    """One remote expert: a base URL and the model name the server knows it by."""

    def __init__(self, expert_id: str, source: OpenAISource):
        self.expert_id = expert_id
        self.source = source
        self.pid = None  # no local process: energy is not measured here

    def _headers(self) -> dict:
        headers = {"Content-Type": "application/json"}
        if self.source.api_key_env and os.environ.get(self.source.api_key_env):
            headers["Authorization"] = f"Bearer {os.environ[self.source.api_key_env]}"
        return headers

    def stream(self, op: str, payload, sampling: dict,
               cancel: threading.Event | None = None) -> Iterator[tuple[str, dict | str]]:
        import httpx

        body = {"model": self.source.model, "stream": True,
                "stream_options": {"include_usage": True},
                "max_tokens": sampling.get("max_tokens"), "temperature": sampling.get("temperature"),
                "top_p": sampling.get("top_p")}
        if sampling.get("stop"):
            body["stop"] = sampling["stop"]
        if sampling.get("seed") is not None:
            body["seed"] = sampling["seed"]
        if op == "chat":
            body["messages"], path = payload, "/chat/completions"
        else:
            body["prompt"], path = payload, "/completions"
        url = self.source.base_url.rstrip("/") + path
        final = {"text": "", "finish_reason": None, "prompt_tokens": 0, "completion_tokens": 0}
        try:
            with httpx.Client(timeout=self.source.timeout_s) as client:
                with client.stream("POST", url, json=body, headers=self._headers()) as response:
                    if response.status_code >= 400:
                        self._fail(response)
                    for line in response.iter_lines():
                        if cancel is not None and cancel.is_set():
                            final["finish_reason"] = "cancelled"
                            break
                        if not line.startswith("data:"):
                            continue
                        data = line[5:].strip()
                        if data == "[DONE]":
                            break
                        event = json.loads(data)
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
        except httpx.HTTPError as exc:
            raise RemoteError(f"remote expert {self.expert_id} at {self.source.base_url}: "
                              f"{type(exc).__name__}: {exc}") from None
        final["finish_reason"] = final["finish_reason"] or "stop"
        yield "done", final

    def _fail(self, response) -> None:
        response.read()
        try:
            error = response.json().get("error") or {}
        except ValueError:
            error = {}
        message = error.get("message") or response.text[:200]
        if response.status_code == 400 and error.get("code") == "context_length_exceeded":
            # leeroo-local's server puts the counts beside the message (llama-server: n_prompt_tokens)
            prompt = error.get("prompt_tokens") or error.get("n_prompt_tokens") or 0
            n_ctx = error.get("n_ctx") or 0
            raise ContextOverflow(int(prompt), int(n_ctx), self.expert_id)
        raise RemoteError(f"remote expert {self.expert_id} at {self.source.base_url} answered "
                          f"{response.status_code}: {message}")
