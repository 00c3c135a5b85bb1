"""Failures as OpenAI-style errors: one table from exception to status, type and code.

The library's exceptions (leeroo_local.errors) keep their user-facing messages; this module only
decides how HTTP says them. The openai client retries 5xx and 429 by default, so errors that a
retry cannot fix carry `x-should-retry: false`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import errors as core
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
    core.BudgetTooSmall: HttpError(503, "server_error", "expert_unavailable"),
    core.CorruptModel: HttpError(503, "server_error", "expert_unavailable"),
    core.NotAvailableOffline: HttpError(503, "server_error", "expert_unavailable"),
    core.NotPresent: HttpError(503, "server_error", "expert_unavailable"),
    core.DownloadError: HttpError(503, "server_error", "expert_unavailable", retry=True),
    core.ExpertCrashed: HttpError(500, "server_error", "expert_crashed", retry=True),
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
        info = ErrorInfo(message=str(exc), type=exc.type, code=exc.code, param=exc.param)
        return exc.status, ErrorBody(error=info), False
    entry = next((ERRORS[c] for c in type(exc).__mro__ if c in ERRORS), None)
    if entry is None:
        log.error("unexpected error", exc_info=exc)
        info = ErrorInfo(message=f"internal error: {type(exc).__name__}", type="server_error")
        return 500, ErrorBody(error=info), True
    info = ErrorInfo(message=str(exc), type=entry.type, code=entry.code, param=entry.param)
    if isinstance(exc, core.ContextOverflow):
        info.prompt_tokens, info.n_ctx = exc.prompt_tokens, exc.n_ctx
    return entry.status, ErrorBody(error=info), entry.retry


def error_response(exc: BaseException, headers: dict[str, str] | None = None) -> JSONResponse:
    """The JSON error response for `exc` (with the route headers, once a route is known)."""
    status, body, retry = describe(exc)
    headers = {**(headers or {}), "x-should-retry": "true" if retry else "false"}
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    problems = exc.errors()
    first = problems[0] if problems else {"loc": (), "msg": "invalid request"}
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    where = ".".join(loc) or None
    more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
    return f"{where + ': ' if where else ''}{first.get('msg', 'invalid')}{more}", where


def install_handlers(app: FastAPI) -> None:
    """Every failure leaves the app in OpenAI's error format."""

    async def _refused(request: Request, exc: BaseException) -> JSONResponse:
        response = error_response(exc)
        await log_refusal(request, response.status_code, str(exc))
        return response

    app.exception_handler(core.LeerooError)(_refused)
    app.exception_handler(Exception)(_refused)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        message, where = _validation_message(exc)
        body = ErrorBody(error=ErrorInfo(message=message, type="invalid_request_error",
                                         param=where, code="invalid_request_body"))
        await log_refusal(request, 422, message)
        return JSONResponse(body.model_dump(), status_code=422, headers={"x-should-retry": "false"})

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        type_, code = _BY_STATUS.get(exc.status_code, ("invalid_request_error", None))
        body = ErrorBody(error=ErrorInfo(message=str(exc.detail), type=type_, code=code))
        await log_refusal(request, exc.status_code, str(exc.detail))
        return JSONResponse(body.model_dump(), status_code=exc.status_code,
                            headers={**(exc.headers or {}), "x-should-retry": "false"})
