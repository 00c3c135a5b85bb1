"""How the server listens and guards its endpoint; refuses to expose itself without a key."""

from __future__ import annotations

import ipaddress

from pydantic import BaseModel, Field, model_validator

from ..errors import ConfigError


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve to anything


class ServerSettings(BaseModel):
    """Knobs of `serve`; an exposed address without an API key is refused at construction."""

    host: str = Field(default="127.0.0.1", description="Address to bind; loopback by default.")
    port: int = Field(default=8642, ge=0, le=65535, description="TCP port; 0 picks a free one.")
    api_key: str | None = Field(
        default=None, min_length=8,
        description="When set, /v1 requests must send `Authorization: Bearer <key>` (else 401).",
    )
    allow_open: bool = Field(
        default=False,
        description="Bind a non-loopback address WITHOUT an API key: anyone who can reach the "
                    "port may use the experts. Off unless asked for explicitly.",
    )
    max_body_bytes: int = Field(
        default=4 * 2**20, ge=1024, description="Largest request body accepted (else 413).")
    first_byte_s: float = Field(
        default=0.5, ge=0,
        description="A stream waits this long for its first token before it starts (role chunk, "
                    "then comments); errors found sooner still get their HTTP status code.",
    )
    keepalive_s: float = Field(
        default=5.0, gt=0,
        description="Seconds between SSE comment lines while a started stream has nothing to "
                    "send (queued behind other requests, or a cold expert loading).",
    )
    shutdown_grace_s: float = Field(
        default=10.0, ge=0,
        description="On SIGTERM or Ctrl-C, seconds requests in flight may take to finish; then "
                    "each remaining stream ends with an error event and [DONE].",
    )

    @model_validator(mode="after")
    def _not_exposed_by_accident(self) -> ServerSettings:
        if not is_loopback(self.host) and self.api_key is None and not self.allow_open:
            raise ConfigError(
                f"serve: binding {self.host} exposes the experts to the network; pass --api-key "
                f"KEY (clients send it as a Bearer token) or --insecure-no-api-key to serve "
                f"without one"
            )
        return self

    @property
    def exposed_without_key(self) -> bool:
        """True when anyone on the network can use the server (the loud opt-out)."""
        return not is_loopback(self.host) and self.api_key is None
