"""The app on uvicorn: in the foreground for `serve`, or in a thread of this process for
programs that embed the server (the tests and the benchmark do)."""

from __future__ import annotations

import signal
import socket
import threading
import time

import uvicorn

from ..errors import LeerooError
from .config import ServerSettings


def bind(host: str, port: int) -> socket.socket:
    """A listening socket (port 0: a free port, read back with getsockname).

    Made with proto IPPROTO_TCP, not 0: the connections it accepts inherit the proto, and
    asyncio turns Nagle's algorithm off (TCP_NODELAY) only on sockets whose proto says TCP.
    With Nagle on, a stream's first event waited in the kernel for the ACK of the headers,
    which the client delays (up to 40 ms on Linux): that was most of the time to first token
    `serve` added over llama-cpp-python in-process.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # inherited on Linux, too
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise LeerooError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(128)
    return sock


class _Server(uvicorn.Server):
    """uvicorn's server, whose shutdown (SIGTERM, Ctrl-C, `should_exit`) first stops accepting,
    then drains the app's requests in flight (shutdown.Inflight) before uvicorn's own steps."""

    def __init__(self, config: uvicorn.Config, grace_s: float):
        super().__init__(config)
        self.grace_s = grace_s

    async def shutdown(self, sockets=None) -> None:
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()  # idle keep-alive connections close; busy ones close after
        state = getattr(getattr(self.config.app, "state", None), "leeroo", None)
        if state is not None:  # a second Ctrl-C (force_exit) cuts the grace period short
            await state.inflight.drain(self.grace_s, hurry=lambda: self.force_exit)
        await super().shutdown(sockets=None)


def _server(app, settings: ServerSettings, log_level: str) -> uvicorn.Server:
    config = uvicorn.Config(app, http="h11", loop="asyncio", lifespan="off",
                            log_level=log_level, timeout_graceful_shutdown=5)
    return _Server(config, settings.shutdown_grace_s)


def run_server(app, settings: ServerSettings, sock: socket.socket | None = None,
               log_level: str = "info") -> None:
    """Serve until interrupted (Ctrl-C or SIGTERM; both shut down gracefully)."""
    sock = sock or bind(settings.host, settings.port)
    # uvicorn raises the SIGTERM it caught again once it has shut down; by default that would
    # kill the process before the caller closes the service (workers, request log).
    previous = signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        _server(app, settings, log_level).run(sockets=[sock])
    finally:
        signal.signal(signal.SIGTERM, previous)


class BackgroundServer:
    """The app served from a thread; `url` is its base, e.g. http://127.0.0.1:PORT."""

    def __init__(self, app, settings: ServerSettings, log_level: str = "warning"):
        self._sock = bind(settings.host, settings.port)
        host, self.port = self._sock.getsockname()[:2]
        self.url = f"http://{'[' + host + ']' if ':' in host else host}:{self.port}"
        self._server = _server(app, settings, log_level)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        daemon=True, name="leeroo-server")

    def start(self, timeout: float = 30.0) -> BackgroundServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise LeerooError("the server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Shut down as on SIGTERM: requests in flight get the grace period, then end."""
        self._server.should_exit = True
        self._thread.join(self._server.grace_s + 30)
        self._sock.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
