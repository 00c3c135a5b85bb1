"""`leeroo-local chat`: the terminal chat that shows which expert answered, latency and energy."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    app.command("chat")(chat)


def chat(
    expert: str = typer.Option("auto", "--expert", "-e", help="Expert id to force, or auto to route."),
    max_tokens: int = typer.Option(256, "--max-tokens", "-n", min=1, help="Most tokens per answer."),
    temperature: float = typer.Option(0.7, "--temperature", "-t", min=0.0, max=2.0),
    seed: int = typer.Option(None, "--seed", help="Sampler seed."),
    ctx: int = typer.Option(None, "--ctx", min=16, help="Context per expert (default: universe's)."),
) -> None:
    """Chat with the universe in the terminal (offline on the starter experts)."""
    from ..backends.base import Sampling
    from ..service import Service
    from ..settings import load_settings
    from ..tui.app import create_app

    service = Service(load_settings(n_ctx=ctx), client="chat")
    try:
        if expert != "auto":
            service.catalog.get(expert)  # an unknown id fails here, before the screen opens
        sampling = Sampling(max_tokens=max_tokens, temperature=temperature, seed=seed)
        create_app(service, sampling=sampling, expert=expert).run()
    finally:
        service.close()
