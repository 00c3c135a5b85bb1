"""Failures as OpenAI-style errors: one table from exception to status, type and code.

The library's exceptions (leeroo_local.errors) keep their user-facing messages; this module only
decides how HTTP says them. The openai client retries 5xx and 429 by default, so errors that a
retry cannot fix carry `x-should-retry: false`.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import errors as core
from ..diskerrors import DiskError
from ..textcheck import find_unencodable, printable, unencodable_message
from .refusals import log_refusal
from .schemas import ErrorBody, ErrorInfo

log = logging.getLogger(__name__)


class ApiError(core.LeerooError):
    """A refusal decided by the server itself (bad parameter, missing key, unknown model)."""

    def __init__(self, status: int, message: str, type_: str = "invalid_request_error",
                 code: str | None = None, param: str | None = None):
        super().__init__(message)
        self.status, self.type, self.code, self.param = status, type_, code, param


@dataclass(frozen=True)
class HttpError:
    """How one kind of failure is said over HTTP."""

    status: int
    type: str
    code: str | None
    retry: bool = False
    param: str | None = None


# The most specific class wins (looked up along the exception's MRO).
ERRORS: dict[type[BaseException], HttpError] = {
    core.UnknownExpert: HttpError(404, "invalid_request_error", "model_not_found", param="model"),
    core.UnknownQuant: HttpError(404, "invalid_request_error", "model_not_found", param="model"),
    core.ContextOverflow: HttpError(400, "invalid_request_error", "context_length_exceeded"),
    core.UnencodableText: HttpError(400, "invalid_request_error", "invalid_encoding"),
    core.SchemaError: HttpError(400, "invalid_request_error", "invalid_json_schema",
                                param="response_format"),
    core.MissingCapability: HttpError(400, "invalid_request_error", "unsupported_capability"),
    core.TemplateError: HttpError(400, "invalid_request_error", "invalid_value", param="messages"),
    core.BudgetTooSmall: HttpError(503, "server_error", "expert_unavailable"),
    core.CorruptModel: HttpError(503, "server_error", "expert_unavailable"),
    core.NotAvailableOffline: HttpError(503, "server_error", "expert_unavailable"),
    core.NotPresent: HttpError(503, "server_error", "expert_unavailable"),
    core.NoExpertLeft: HttpError(503, "server_error", "expert_unavailable"),
    core.DownloadError: HttpError(503, "server_error", "expert_unavailable", retry=True),
    DiskError: HttpError(503, "server_error", "expert_unavailable"),
    core.ExpertCrashed: HttpError(500, "server_error", "expert_crashed", retry=True),
    core.RemoteError: HttpError(502, "server_error", "expert_unavailable", retry=True),
    core.Cancelled: HttpError(499, "invalid_request_error", "cancelled"),
    core.ConfigError: HttpError(500, "server_error", "config_error"),
    core.LeerooError: HttpError(500, "server_error", None),
}

_BY_STATUS = {  # errors raised as HTTP exceptions by starlette itself, and by the auth check
    401: ("invalid_request_error", "invalid_api_key"),
    404: ("invalid_request_error", "not_found"),
    405: ("invalid_request_error", "method_not_allowed"),
    413: ("invalid_request_error", "request_too_large"),
}


def describe(exc: BaseException) -> tuple[int, ErrorBody, bool]:
    """(status, OpenAI error body, may the client retry) for any exception."""
    if isinstance(exc, ApiError):
        info = ErrorInfo(message=printable(str(exc)), type=exc.type, code=exc.code,
                         param=exc.param)
        return exc.status, ErrorBody(error=info), False
    entry = next((ERRORS[c] for c in type(exc).__mro__ if c in ERRORS), None)
    if entry is None:
        log.error("unexpected error", exc_info=exc)
        info = ErrorInfo(message=f"internal error: {type(exc).__name__}", type="server_error")
        return 500, ErrorBody(error=info), True
    info = ErrorInfo(message=printable(str(exc)), type=entry.type, code=entry.code,
                     param=getattr(exc, "field", None) or entry.param)
    if isinstance(exc, core.ContextOverflow):
        info.prompt_tokens, info.n_ctx = exc.prompt_tokens, exc.n_ctx
    return entry.status, ErrorBody(error=info), entry.retry


def error_response(exc: BaseException, headers: dict[str, str] | None = None,
                   path: str = "") -> JSONResponse:
    """The JSON error response for `exc` (with the route headers, once a route is known), in
    Anthropic's shape on its API's paths."""
    status, body, retry = describe(exc)
    return render(status, body, {**(headers or {}), "x-should-retry": "true" if retry else "false"},
                  path)


ANTHROPIC_PATHS = "/v1/messages"

# Anthropic's error types by status (its API reference, "Errors").
_ANTHROPIC_TYPES = {400: "invalid_request_error", 401: "authentication_error",
                    403: "permission_error", 404: "not_found_error", 413: "request_too_large",
                    422: "invalid_request_error", 429: "rate_limit_error", 499: "cancelled",
                    500: "api_error", 503: "overloaded_error"}


def anthropic_body(status: int, message: str) -> dict:
    """Anthropic's error object: {"type": "error", "error": {"type", "message"}}."""
    kind = _ANTHROPIC_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": message}}


def render(status: int, body: ErrorBody, headers: dict[str, str], path: str = "") -> JSONResponse:
    """OpenAI's error body, or Anthropic's on its paths (the same status and headers)."""
    content = (anthropic_body(status, body.error.message) if path.startswith(ANTHROPIC_PATHS)
               else body.model_dump())
    return JSONResponse(content, status_code=status, headers=headers)


# A union field's error is reported once per member (str, list[...]); their tags in `loc` name
# pydantic's types, not the request's fields.
_UNION_TAG = re.compile(r"^(str|int|float|bool|constrained-\w+|[\w-]+\[.*\])$")


def _validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    """The most telling problem, as one line: a broken bound (too long, too large) before a
    member of a union whose type did not match."""
    problems = exc.errors() or [{"loc": (), "msg": "invalid request", "type": ""}]
    first = min(problems, key=lambda p: str(p.get("type", "")).endswith("_type"))
    loc = [str(p) for p in first.get("loc", ()) if p != "body" and not _UNION_TAG.match(str(p))]
    where = ".".join(loc) or None
    more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
    return printable(f"{where + ': ' if where else ''}{first.get('msg', 'invalid')}{more}"), where


def install_handlers(app: FastAPI) -> None:
    """Every failure leaves the app in OpenAI's error format (Anthropic's on its paths)."""

    async def _refused(request: Request, exc: BaseException) -> JSONResponse:
        response = error_response(exc, path=request.url.path)
        await log_refusal(request, response.status_code, str(exc))
        return response

    app.exception_handler(core.LeerooError)(_refused)
    app.exception_handler(Exception)(_refused)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        message, where = _validation_message(exc)
        status, code = 422, "invalid_request_body"
        unicode = next((p for p in exc.errors() if p.get("type") == "string_unicode"), None)
        if unicode is not None:
            # A lone surrogate in a field with a length bound, which pydantic checks first:
            # the same refusal as anywhere else (textcheck.py).
            status, code = 400, "invalid_encoding"
            found = find_unencodable(unicode.get("input"), where or "")
            message = unencodable_message(*found) if found else f"{where}: invalid Unicode"
        body = ErrorBody(error=ErrorInfo(message=message, type="invalid_request_error",
                                         param=where, code=code))
        await log_refusal(request, status, message)
        return render(status, body, {"x-should-retry": "false"}, request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        type_, code = _BY_STATUS.get(exc.status_code, ("invalid_request_error", None))
        body = ErrorBody(error=ErrorInfo(message=printable(str(exc.detail)), type=type_, code=code))
        await log_refusal(request, exc.status_code, str(exc.detail))
        return render(exc.status_code, body, {**(exc.headers or {}), "x-should-retry": "false"},
                      request.url.path)
