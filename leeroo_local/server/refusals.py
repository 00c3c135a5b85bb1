"""A log row for every generation request the server refuses before the service sees it
(malformed body, unknown model, unsupported field, body too large), so the request log holds
one row per request. Requests without a valid key are not logged: they would let anyone fill it.
"""

from __future__ import annotations

import json

from fastapi import Request

_KINDS = {"/v1/chat/completions": "chat", "/v1/completions": "complete", "/v1/messages": "chat",
          "/infill": "complete", "/v1/embeddings": "embed"}


def mark_reached(request: Request) -> None:
    """From here on the service logs the request itself (success, error or cancellation)."""
    request.state.leeroo_reached = True


async def log_refusal(request: Request, status: int, message: str) -> None:
    kind = _KINDS.get(request.url.path)
    if (kind is None or request.method != "POST" or status == 401
            or getattr(request.state, "leeroo_reached", False)):
        return
    state = getattr(request.app.state, "leeroo", None)
    if state is None:
        return
    prompt = "" if status == 413 else await _prompt(request)  # a body too large stays unread
    state.service.record_request(kind=kind, prompt=prompt, error=f"refused ({status}): {message}",
                                 client=state.service.client,
                                 conversation=request.headers.get("x-leeroo-conversation"))


async def _prompt(request: Request) -> str:
    """What the body asked, as far as it can be read (the last message, or the prompt)."""
    try:
        body = json.loads(await request.body())
    except Exception:  # noqa: BLE001 - unreadable or not JSON: the row still says what was refused
        return ""
    if not isinstance(body, dict):
        return ""
    messages = body.get("messages")
    if isinstance(messages, list) and messages and isinstance(messages[-1], dict):
        content = messages[-1].get("content")
        return content if isinstance(content, str) else json.dumps(content)[:2000]
    prompt = body.get("prompt") or body.get("input") or body.get("input_prefix")
    return prompt if isinstance(prompt, str) else ""
