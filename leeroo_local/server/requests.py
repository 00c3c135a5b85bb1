"""OpenAI requests into service arguments, refusing what this server cannot honour (400)."""

from __future__ import annotations

import json
import re

from ..backends.base import Sampling
from ..limits import MAX_SCHEMA_BYTES, MAX_SCHEMA_DEPTH
from ..settings import SamplingDefaults
from ..textcheck import require_encodable
from .errors import ApiError
from .schemas import (ChatCompletionRequest, CompletionRequest, GenerationRequest, Message,
                      ResponseFormat)


_PASSED = ("temperature", "top_p", "seed", "frequency_penalty", "presence_penalty", "top_k",
           "min_p", "repeat_penalty", "repeat_last_n")


def sampling(req: GenerationRequest, n_ctx: int, defaults: SamplingDefaults,
             notes: list[str] | None = None) -> Sampling:
    """The backend's sampling options; absent fields take the configured defaults. What was
    changed from the request (a max_tokens capped at the context) is appended to `notes`."""
    if req.n not in (None, 1):
        raise ApiError(400, f"n={req.n} is not supported: each request is answered by one "
                            f"expert with one choice; send n=1 or leave it out", param="n",
                       code="unsupported_value")
    if isinstance(req.stop, list) and len(req.stop) > 4:
        raise ApiError(400, "at most 4 stop strings", param="stop", code="unsupported_value")
    given = {name: getattr(req, name) for name in _PASSED}
    given.update(stop=[req.stop] if isinstance(req.stop, str) else req.stop)
    if req.repeat_last_n is not None:  # llama.cpp allocates the window on every request
        given["repeat_last_n"] = _capped("repeat_last_n", req.repeat_last_n, n_ctx, notes)
    given["json_schema"] = json_schema(req.response_format)
    return over_defaults(defaults, req.token_limit(n_ctx), n_ctx, notes, **given)


def over_defaults(defaults: SamplingDefaults, max_tokens: int, n_ctx: int,
                  notes: list[str] | None, **given) -> Sampling:
    """A Sampling of the fields a request gave (None: not given) over the configured defaults,
    its max_tokens capped at the context (said in `notes`): every endpoint's one way to it."""
    given["max_tokens"] = _capped("max_tokens", max_tokens, n_ctx, notes)
    return Sampling(**{**defaults.model_dump(), **{k: v for k, v in given.items() if v is not None}})


_DURATION = re.compile(r"^(-?\d+(?:\.\d+)?)(ms|s|m|h)?$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def keep_alive(value: float | str | None) -> float | None:
    """Ollama's keep_alive in seconds (a number, or "30s", "5m", "1h"); negative: forever."""
    if value is None or isinstance(value, (int, float)):
        return None if value is None else float(value)
    found = _DURATION.match(value.strip())
    if not found:
        raise ApiError(400, f"keep_alive: {value!r} is not a duration such as 30s, 5m or 1h",
                       param="keep_alive", code="invalid_value")
    seconds = float(found.group(1)) * _UNIT_S[found.group(2)]
    if seconds > 10**7:
        raise ApiError(400, f"keep_alive: {value!r} is more than 10,000,000 seconds",
                       param="keep_alive", code="invalid_value")
    return seconds


def json_schema(fmt: ResponseFormat | None) -> dict | None:
    """The schema the answer must follow: {"type": "object"} for `json_object`, the given one
    for `json_schema` (bounded in size and depth), None for free text."""
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_object":
        return {"type": "object"}
    schema = fmt.json_schema.schema_ if fmt.json_schema else None
    if not isinstance(schema, dict):
        raise ApiError(400, "response_format.json_schema.schema: a JSON schema is required",
                       param="response_format.json_schema.schema", code="invalid_json_schema")
    size, depth = len(json.dumps(schema)), _depth(schema)
    if size > MAX_SCHEMA_BYTES or depth > MAX_SCHEMA_DEPTH:
        raise ApiError(400, f"response_format.json_schema.schema: {size:,} bytes nested {depth} "
                            f"deep; at most {MAX_SCHEMA_BYTES:,} bytes and {MAX_SCHEMA_DEPTH} "
                            f"levels", param="response_format.json_schema.schema",
                       code="invalid_json_schema")
    return schema


def _depth(value, level: int = 0) -> int:
    if level > MAX_SCHEMA_DEPTH:
        return level  # deep enough to refuse; no need to walk the rest
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    return max((_depth(v, level + 1) for v in children), default=level)


def _capped(name: str, value: int, n_ctx: int, notes: list[str] | None) -> int:
    if value <= n_ctx:
        return value
    if notes is not None:
        notes.append(f"{name} {value} is more than the context holds: capped at {n_ctx} (n_ctx)")
    return n_ctx


def check_text(req: GenerationRequest) -> None:
    """400 (invalid_encoding) naming the field, for text that UTF-8 cannot carry."""
    require_encodable(req)


def _plain(message: Message, index: int) -> dict:
    content = message.content
    if isinstance(content, list):
        other = next((p.type for p in content if p.type != "text"), None)
        if other is not None:
            raise ApiError(400, f"content parts of type {other!r} are not supported: the experts "
                                f"read text only", param=f"messages.{index}.content",
                           code="unsupported_value")
        content = "".join(p.text or "" for p in content)
    role = "system" if message.role == "developer" else message.role
    return {"role": role, "content": content or ""}


def chat_messages(req: ChatCompletionRequest) -> list[dict]:
    """The conversation as the service takes it: roles and plain strings."""
    if req.logprobs or req.top_logprobs is not None:
        raise ApiError(400, "logprobs are not supported by this server", param="logprobs",
                       code="unsupported_parameter")
    if req.tools and req.tool_choice != "none":
        raise ApiError(400, "tools: this server does not serve tool calls yet, so no expert of "
                            "this universe can answer with one; send the request without tools "
                            "(or tool_choice none)", param="tools", code="unsupported_capability")
    return [_plain(m, i) for i, m in enumerate(req.messages)]


def completion_prompt(req: CompletionRequest) -> str:
    """The one prompt of a legacy completion."""
    for field, bad in (("echo", bool(req.echo)),
                       ("best_of", req.best_of not in (None, 1)),
                       ("logprobs", req.logprobs not in (None, 0))):
        if bad:
            raise ApiError(400, f"{field} is not supported by this server", param=field,
                           code="unsupported_parameter")
    if isinstance(req.prompt, list):
        if len(req.prompt) != 1:
            raise ApiError(400, f"send one prompt per request, not {len(req.prompt)}",
                           param="prompt", code="unsupported_value")
        return req.prompt[0]
    return req.prompt
