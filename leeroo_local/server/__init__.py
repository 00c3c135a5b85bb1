"""`leeroo-local serve`: the universe behind one OpenAI-compatible HTTP endpoint.

The only package that imports fastapi, starlette and uvicorn. `create_app(service, settings)`
builds the app (the CLI and the tests build it the same way); `BackgroundServer` and
`run_server` put it on uvicorn.
"""

from .app import create_app
from .config import ServerSettings
from .runner import BackgroundServer, run_server

__all__ = ["BackgroundServer", "ServerSettings", "create_app", "run_server"]
