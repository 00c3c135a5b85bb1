"""OpenAI requests into service arguments, refusing what this server cannot honour (400)."""

from __future__ import annotations

import json
import re

from ..backends.base import Sampling
from ..limits import MAX_SCHEMA_BYTES, MAX_SCHEMA_DEPTH
from ..settings import SamplingDefaults
from ..textcheck import require_encodable
from ..toolcalls import Tools
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
    _bounded(schema, "response_format.json_schema.schema")
    return schema


def _bounded(schema: dict, field: str) -> None:
    size, depth = len(json.dumps(schema)), _depth(schema)
    if size > MAX_SCHEMA_BYTES or depth > MAX_SCHEMA_DEPTH:
        raise ApiError(400, f"{field}: {size:,} bytes nested {depth} deep; at most "
                            f"{MAX_SCHEMA_BYTES:,} bytes and {MAX_SCHEMA_DEPTH} levels",
                       param=field, code="invalid_json_schema")


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
    out: dict = {"role": role, "content": content or ""}
    if message.tool_calls:
        out["tool_calls"] = [c.model_dump() for c in message.tool_calls]
    if role == "tool":
        if not message.tool_call_id:
            raise ApiError(400, f"messages.{index}.tool_call_id: a tool message answers a call; "
                                f"name it", param=f"messages.{index}.tool_call_id",
                           code="invalid_value")
        out["tool_call_id"] = message.tool_call_id
    return out


def chat_messages(req: ChatCompletionRequest) -> list[dict]:
    """The conversation as the service takes it: roles, plain strings, an assistant's calls and
    the tools' results."""
    if req.logprobs or req.top_logprobs is not None:
        raise ApiError(400, "logprobs are not supported by this server", param="logprobs",
                       code="unsupported_parameter")
    return [_plain(m, i) for i, m in enumerate(req.messages)]


_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def tools(functions: list[dict] | None, choice, parallel: bool | None) -> Tools | None:
    """The functions a chat offers and how they may be used (None: no tools, or tool_choice
    none); a 400 naming the field for a tool or a choice that cannot be honoured."""
    if not functions or choice == "none":
        if isinstance(choice, (dict, str)) and choice not in (None, "none", "auto"):
            raise ApiError(400, "tool_choice: no tools were given to choose from",
                           param="tool_choice", code="invalid_value")
        return None
    offered = []
    for i, tool in enumerate(functions):
        fn = tool.get("function") if tool.get("type", "function") == "function" else None
        name = fn.get("name") if isinstance(fn, dict) else None
        if not isinstance(name, str) or not _NAME.match(name):
            raise ApiError(400, f"tools.{i}: a function tool with a name of 1 to 64 letters, "
                                f"digits, _ or - is required", param=f"tools.{i}",
                           code="invalid_value")
        params = fn.get("parameters")
        if params is not None and not isinstance(params, dict):
            raise ApiError(400, f"tools.{i}.function.parameters: a JSON schema (an object) is "
                                f"required", param=f"tools.{i}.function.parameters",
                           code="invalid_value")
        _bounded(params or {}, f"tools.{i}.function.parameters")
        offered.append({"type": "function", "function": {
            k: v for k, v in fn.items() if k in ("name", "description", "parameters", "strict")}})
    names = [t["function"]["name"] for t in offered]
    if len(set(names)) != len(names):
        raise ApiError(400, "tools: each function needs a name of its own", param="tools",
                       code="invalid_value")
    if choice in (None, "auto"):
        return Tools(tuple(offered), "auto", parallel=parallel is not False)
    if choice == "required":
        return Tools(tuple(offered), "required", parallel=parallel is not False)
    named = (choice.get("function") or {}).get("name") if isinstance(choice, dict) else None
    if named not in names:
        raise ApiError(400, f"tool_choice: {choice!r} is not auto, none, required or one of the "
                            f"functions given ({', '.join(names)})", param="tool_choice",
                       code="invalid_value")
    return Tools(tuple(offered), "function", name=named, parallel=parallel is not False)


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
