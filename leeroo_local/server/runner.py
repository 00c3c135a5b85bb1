"""The app on uvicorn: in the foreground for `serve`, or in a thread of this process for
programs that embed the server (the tests and the benchmark do)."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn

from ..errors import LeerooError
from .config import ServerSettings


def bind(host: str, port: int) -> socket.socket:
    """A listening socket (port 0: a free port, read back with getsockname)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise LeerooError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(128)
    return sock


def _server(app, log_level: str) -> uvicorn.Server:
    config = uvicorn.Config(app, http="h11", loop="asyncio", lifespan="off",
                            log_level=log_level, timeout_graceful_shutdown=5)
    return uvicorn.Server(config)


def run_server(app, settings: ServerSettings, sock: socket.socket | None = None,
               log_level: str = "info") -> None:
    """Serve until interrupted (Ctrl-C)."""
    sock = sock or bind(settings.host, settings.port)
    _server(app, log_level).run(sockets=[sock])


class BackgroundServer:
    """The app served from a thread; `url` is its base, e.g. http://127.0.0.1:PORT."""

    def __init__(self, app, settings: ServerSettings, log_level: str = "warning"):
        self._sock = bind(settings.host, settings.port)
        host, self.port = self._sock.getsockname()[:2]
        self.url = f"http://{'[' + host + ']' if ':' in host else host}:{self.port}"
        self._server = _server(app, log_level)
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
        self._server.should_exit = True
        self._thread.join(10)
        self._sock.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
