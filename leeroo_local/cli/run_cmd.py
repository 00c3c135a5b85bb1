"""`leeroo-local run PROMPT`: answer one prompt on the universe, streaming to the terminal."""

from __future__ import annotations

import typer

from .common import (MinP, RepeatLastN, RepeatPenalty, Temperature, TopK, TopP,
                     echo_json, provision_at_start)


def register(app: typer.Typer) -> None:
    app.command("run")(run)


def run(
    prompt: str = typer.Argument(..., help="The prompt."),
    expert: str = typer.Option("auto", "--expert", "-e", help="Expert id, or auto to route."),
    max_tokens: int = typer.Option(256, "--max-tokens", "-n", min=1, help="Most tokens to generate."),
    temperature: Temperature = None,
    top_p: TopP = None,
    top_k: TopK = None,
    min_p: MinP = None,
    repeat_penalty: RepeatPenalty = None,
    repeat_last_n: RepeatLastN = None,
    seed: int = typer.Option(None, "--seed", help="Sampler seed."),
    ctx: int = typer.Option(None, "--ctx", min=16, help="Context per expert (default: universe's)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object at the end."),
) -> None:
    """Route PROMPT to an expert and stream its answer (offline on the starter experts)."""
    from ..preflight import start_service
    from ..runtime.service import Progress, Result, TextEvent

    service = start_service("cli", lambda note: typer.echo(note, err=True), n_ctx=ctx)
    sampling = service.sampling(max_tokens=max_tokens, temperature=temperature, top_p=top_p,
                                top_k=top_k, min_p=min_p, repeat_penalty=repeat_penalty,
                                repeat_last_n=repeat_last_n, seed=seed)
    try:
        provision_at_start(service, expert, quiet=as_json)
        for event in service.chat([{"role": "user", "content": prompt}], expert, sampling):
            if isinstance(event, Result):
                result = event
            elif isinstance(event, Progress) and event.stage == "loading" and not as_json:
                typer.echo(f"[loading {event.route.expert} {event.route.quant}...]", err=True)
            elif isinstance(event, TextEvent) and not as_json:
                typer.echo(event.text, nl=False)
    finally:
        service.close()
    if as_json:
        echo_json(result.model_dump())
        return
    t = result.timings
    typer.echo("")
    typer.echo(
        f"[{result.expert} {result.quant}] {result.route.reason}; load {t.load_s:.2f}s, "
        f"first token {t.ttft_s:.2f}s, {t.tokens_per_s:.1f} tok/s, "
        f"{result.energy.joules:.1f} J ({result.energy.method})",
        err=True,
    )
