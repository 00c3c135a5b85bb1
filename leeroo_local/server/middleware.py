"""Guards that run before a request reaches its route: the API key, then the body size.

Plain ASGI (no BaseHTTPMiddleware), so streamed responses and disconnects pass through as is.
"""

from __future__ import annotations

import hmac

from fastapi import HTTPException, Request

from ..units import format_size
from .errors import ApiError, error_response
from .refusals import log_refusal


def key_matches(authorization: bytes, x_api_key: bytes, expected: bytes) -> bool:
    """`Authorization: Bearer KEY` (the scheme in any case: RFC 7235) or `x-api-key: KEY`."""
    scheme, _, token = authorization.strip().partition(b" ")
    return (scheme.lower() == b"bearer" and hmac.compare_digest(token.strip(), expected)) or \
        hmac.compare_digest(x_api_key.strip(), expected)


class ApiKeyMiddleware:
    """401 for every request but /health without `Authorization: Bearer <key>` (or Anthropic's
    `x-api-key: <key>`), checked before the body is read (so a malformed body without a key is
    a 401, not a 422)."""

    def __init__(self, app, api_key: str):
        self.app = app
        self._expected = api_key.encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"] != "/health":  # all but the health probe
            headers = dict(scope["headers"])
            if not key_matches(headers.get(b"authorization", b""), headers.get(b"x-api-key", b""),
                               self._expected):
                response = error_response(ApiError(
                    401, "a valid API key is required: send `Authorization: Bearer <key>` or "
                         "`x-api-key: <key>`", code="invalid_api_key"), path=scope["path"])
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class BodyLimitMiddleware:
    """413 in OpenAI's error format for a body over `limit` bytes: at once when Content-Length
    says so, else as soon as the bytes received pass the limit."""

    def __init__(self, app, limit: int):
        self.app = app
        self.limit = limit

    def _too_large(self) -> ApiError:
        return ApiError(413, f"the request body is larger than this server accepts "
                             f"({format_size(self.limit)})", code="request_too_large")

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await error_response(self._too_large(), path=scope["path"])(scope, receive, send)
            await log_refusal(Request(scope), 413, str(self._too_large()))  # its row, unread
            return
        received = 0

        async def limited():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    # FastAPI re-raises an HTTPException met while reading the body, so the
                    # error handler (not a generic 400) renders it.
                    raise HTTPException(413, str(self._too_large()))
            return message

        await self.app(scope, limited, send)
