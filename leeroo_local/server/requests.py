"""OpenAI requests into service arguments, refusing what this server cannot honour (400)."""

from __future__ import annotations

from ..backends.base import Sampling
from ..settings import SamplingDefaults
from ..textcheck import require_encodable
from .errors import ApiError
from .schemas import ChatCompletionRequest, CompletionRequest, Message, GenerationRequest


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
    given.update(max_tokens=_capped("max_tokens", req.token_limit(n_ctx), n_ctx, notes),
                 stop=[req.stop] if isinstance(req.stop, str) else req.stop)
    if req.repeat_last_n is not None:  # llama.cpp allocates the window on every request
        given["repeat_last_n"] = _capped("repeat_last_n", req.repeat_last_n, n_ctx, notes)
    return Sampling(**{**defaults.model_dump(), **{k: v for k, v in given.items() if v is not None}})


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
    return [_plain(m, i) for i, m in enumerate(req.messages)]


def completion_prompt(req: CompletionRequest) -> str:
    """The one prompt of a legacy completion."""
    for field, bad in (("echo", bool(req.echo)), ("suffix", bool(req.suffix)),
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
