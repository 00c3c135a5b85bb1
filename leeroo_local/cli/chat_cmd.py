"""`leeroo-local chat`: the terminal chat that shows which expert answered, latency and energy."""

from __future__ import annotations

import typer

from .common import (MinP, RepeatLastN, RepeatPenalty, Temperature, TopK, TopP,
                     provision_at_start)


def register(app: typer.Typer) -> None:
    app.command("chat")(chat)


def chat(
    expert: str = typer.Option("auto", "--expert", "-e", help="Expert id to force, or auto to route."),
    max_tokens: int = typer.Option(256, "--max-tokens", "-n", min=1, help="Most tokens per answer."),
    temperature: Temperature = None,
    top_p: TopP = None,
    top_k: TopK = None,
    min_p: MinP = None,
    repeat_penalty: RepeatPenalty = None,
    repeat_last_n: RepeatLastN = None,
    seed: int = typer.Option(None, "--seed", help="Sampler seed."),
    ctx: int = typer.Option(None, "--ctx", min=16, help="Context per expert (default: universe's)."),
) -> None:
    """Chat with the universe in the terminal (offline on the starter experts)."""
    from ..preflight import start_service
    from ..tui.app import create_app

    service = start_service("chat", lambda note: typer.echo(note, err=True), n_ctx=ctx)
    try:
        if expert != "auto":
            service.catalog.get(expert)  # an unknown id fails here, before the screen opens
        else:
            service.warm_router()  # while the files are checked, the screen opens, the user types
        provision_at_start(service, expert)
        sampling = service.sampling(max_tokens=max_tokens, temperature=temperature, top_p=top_p,
                                    top_k=top_k, min_p=min_p, repeat_penalty=repeat_penalty,
                                    repeat_last_n=repeat_last_n, seed=seed)
        create_app(service, sampling=sampling, expert=expert).run()
    finally:
        service.close()
