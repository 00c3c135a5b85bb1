"""`create_app(service, settings)`: the FastAPI app, with its state on the app and no globals.

Routes: GET /health, GET /v1/models, GET /v1/models/{id}, and the completions of
completions.py. Model names are looked up among the universe's members (or `auto`), never
used as paths and never sent to the catalog for a download.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from .. import __version__
from ..errors import UnknownExpert
from ..runtime.service import Service
from .bridge import Threads
from .anthropic import router as anthropic_router
from .completions import router as completions_router
from .embeddings import router as embeddings_router
from .infill import router as infill_router
from .config import ServerSettings
from .errors import install_handlers
from .metrics import Metrics
from .middleware import ApiKeyMiddleware, BodyLimitMiddleware, key_matches
from .schemas import ModelCard, ModelInfo, ModelList
from .shutdown import Inflight

router = APIRouter()


@dataclass
class AppState:
    """What every request handler needs, kept on `app.state.leeroo`."""

    service: Service
    settings: ServerSettings
    started: int = field(default_factory=lambda: int(time.time()))
    inflight: Inflight = field(default_factory=Inflight)
    threads: Threads = field(default_factory=Threads)
    metrics: Metrics | None = None

    def resolve(self, model: str) -> str:
        """`auto` or a member of the universe; anything else is an unknown model (404)."""
        ids = self.service.universe.ids()
        if model == "auto" or model in ids:
            return model
        raise UnknownExpert(f"model {model!r} is not served here; GET /v1/models lists: "
                            f"auto, {', '.join(ids)}")

    def cards(self) -> list[ModelCard]:
        rows = self.service.status()
        auto = ModelCard(id="auto", created=self.started, leeroo=ModelInfo(
            name="auto: the routing policy picks one expert per request",
            members=[r["expert"] for r in rows]))
        return [auto] + [ModelCard(id=r["expert"], created=self.started, leeroo=ModelInfo(
            name=r["name"], quant=r["quant"], memory_bytes=r["memory_bytes"], remote=r["remote"],
            loaded=r["loaded"], loading=r["loading"], busy=r["busy"], queued=r["queued"],
            keep_alive_s=r["keep_alive_s"], pinned=r.get("pinned", False))) for r in rows]


@router.get("/health")
def health(request: Request) -> dict:
    """ready, or loading while an expert loads; which experts are loaded; whether the request
    log is being written (`log.status`: ok or degraded); each added host's state (up, down or
    backing-off, its last check, its members; a stale one is probed, a second at most). No key
    needed; without one where the server has a key, a host is only its name and state: its
    address and what it last said stay with the key's holders."""
    state = request.app.state.leeroo
    service = state.service
    rows = service.status()
    keys = ("expert", "quant", "loaded", "loading", "busy", "queued")
    expected = state.settings.api_key
    holder = not expected or key_matches(request.headers.get("authorization", "").encode(),
                                         request.headers.get("x-api-key", "").encode(),
                                         expected.encode())
    hosts = service.hosts(probe=holder)  # an anonymous caller never makes us call out
    if not holder:
        hosts = [{"name": h["name"], "state": h["state"]} for h in hosts]
    return {"status": "loading" if any(r["loading"] for r in rows) else "ready",
            "experts": [{k: r[k] for k in keys} for r in rows],
            "log": service.log_state(), "hosts": hosts}


@router.get("/metrics")
def metrics(request: Request) -> Response:
    """Prometheus' text format: requests, routes, first-token and decode histograms, loads,
    tokens, energy, errors, queue depth (the API key applies when one is set)."""
    return Response(request.app.state.leeroo.metrics.render(), media_type=CONTENT_TYPE_LATEST)


@router.get("/v1/models")
def list_models(request: Request) -> ModelList:
    """auto and every expert of the universe, with quantization, memory and load state."""
    return ModelList(data=request.app.state.leeroo.cards())


@router.get("/v1/models/{model_id}")
def get_model(model_id: str, request: Request) -> ModelCard:
    """One model of the list, or 404."""
    state = request.app.state.leeroo
    state.resolve(model_id)
    return next(c for c in state.cards() if c.id == model_id)


def create_app(service: Service, settings: ServerSettings | None = None) -> FastAPI:
    """The app for `service`, shared by the CLI, the tests and the benchmark. The caller owns
    the service (and closes it after the server stops)."""
    settings = settings or ServerSettings()
    app = FastAPI(title="leeroo-local", version=__version__, docs_url=None, redoc_url=None)
    app.state.leeroo = AppState(service=service, settings=settings, metrics=Metrics(service))
    install_handlers(app)
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_body_bytes)
    if settings.api_key:  # added last, so it runs first
        app.add_middleware(ApiKeyMiddleware, api_key=settings.api_key)
    app.include_router(router)
    app.include_router(completions_router)
    app.include_router(anthropic_router)
    app.include_router(infill_router)
    app.include_router(embeddings_router)
    return app
