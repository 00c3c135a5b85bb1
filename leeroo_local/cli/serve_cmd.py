"""`leeroo-local serve`: the universe behind an OpenAI-compatible endpoint on this machine."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (loopback by default)."),
    port: int = typer.Option(8642, "--port", "-p", min=0, max=65535,
                             help="Port; 0 picks a free one."),
    api_key: str = typer.Option(None, "--api-key", envvar="LEEROO_API_KEY",
                                help="Require `Authorization: Bearer KEY` (or `x-api-key: KEY`) on "
                                     "/v1 and /metrics (8+ characters). A command-line argument "
                                     "is visible to every local user in `ps`; the LEEROO_API_KEY "
                                     "environment variable is not, so prefer it."),
    insecure_no_api_key: bool = typer.Option(
        False, "--insecure-no-api-key",
        help="Allow a non-loopback --host without an API key: anyone on the network may use it."),
    ctx: int = typer.Option(None, "--ctx", min=16,
                            help="Context per expert (default: universe's)."),
    max_body: str = typer.Option("4MB", "--max-body", help="Largest request body accepted."),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn's log level."),
    shutdown_grace: float = typer.Option(
        10.0, "--shutdown-grace", min=0,
        help="On SIGTERM or Ctrl-C, seconds requests in flight may take to finish."),
    pull: bool = typer.Option(
        True, "--pull/--no-pull",
        help="Make every member's file present before listening (download, assemble, quantize); "
             "--no-pull: a request for a missing one gets a 503 naming `leeroo-local pull`."),
) -> None:
    """Serve the universe at http://HOST:PORT/v1 (models: auto and each expert)."""
    from pydantic import ValidationError

    from ..errors import ConfigError, one_line
    from ..preflight import start_service
    from ..server import ServerSettings, create_app, run_server
    from ..server.runner import bind
    from ..units import parse_size

    try:
        body_limit = parse_size(max_body)
    except ValueError as exc:
        raise ConfigError(f"serve: --max-body: {exc}") from None
    try:
        settings = ServerSettings(host=host, port=port, api_key=api_key,
                                  allow_open=insecure_no_api_key, max_body_bytes=body_limit,
                                  shutdown_grace_s=shutdown_grace)
    except ValidationError as exc:
        raise ConfigError(one_line(exc, "serve")) from None
    service = start_service("serve", lambda note: typer.echo(note, err=True), batching=True,
                            n_ctx=ctx)
    service.warm_router()  # while uvicorn starts, not on the first request
    if pull:
        from .common import provision_at_start

        provision_at_start(service)
    sock = bind(settings.host, settings.port)
    url = f"http://{settings.host}:{sock.getsockname()[1]}/v1"
    # On stdout, so a script that starts `serve --port 0` reads the address from it.
    typer.echo(f"leeroo-local serving auto, {', '.join(service.universe.ids())} at {url}")
    if settings.exposed_without_key:
        typer.secho(f"WARNING: {settings.host} is reachable from the network and no API key is "
                    f"set: anyone who can reach this port can use the experts.",
                    fg=typer.colors.RED, bold=True, err=True)
    try:
        run_server(create_app(service, settings), settings, sock=sock, log_level=log_level)
    finally:
        service.close()
