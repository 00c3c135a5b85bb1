"""`leeroo-local tune`: measure thread counts on this machine and keep the fastest."""

from __future__ import annotations

import typer

from .common import echo_json, user_catalog


def register(app: typer.Typer) -> None:
    app.command("tune")(tune)


def tune(
    expert: str = typer.Option(None, "--expert", "-e",
                               help="Expert to measure on (default: the universe's first local one)."),
    rounds: int = typer.Option(3, "--rounds", min=1, max=20, help="Interleaved rounds."),
    tokens: int = typer.Option(64, "--tokens", min=8, max=1024, help="Tokens decoded a run."),
    save: bool = typer.Option(False, "--save", help="Write the choice into config.toml."),
    speculative: bool = typer.Option(
        False, "--speculative", help="Measure speculative decoding instead: each local member "
        "alone, with prompt lookup (ngram) and with each smaller member of its tokenizer "
        "drafting; keep (--save) what pays."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Decode and read a prompt with 1 to all logical cores' threads; say (and with --save keep)
    the fastest, since the right count depends on the machine and its load."""
    if speculative:
        _speculative(expert, rounds, tokens, save, as_json)
        return
    from ..errors import ConfigError
    from ..provision.ensure import ensure_local
    from ..tune import measure
    from ..tune import save as keep
    from ..universe import current_universe

    catalog = user_catalog()
    if expert is None:
        local = [m for m in current_universe(catalog).members if not catalog.get(m.expert).remote]
        if not local:
            raise ConfigError("tune: the universe has no local expert; name one with --expert")
        expert, quant = local[0].expert, local[0].quant
    else:
        quant = catalog.get(expert).default_quant
    entry = catalog.get(expert)
    if entry.remote:
        raise ConfigError(f"tune: {expert} runs on another machine")
    path = ensure_local(catalog, entry, entry.quant(quant))
    tuning = measure(path, rounds, tokens)
    written = keep(tuning) if save else None
    if as_json:
        echo_json({**tuning.model_dump(), "saved": str(written) if written else None})
        return
    typer.echo(f"{expert} {quant}, {rounds} rounds of {tokens} tokens:")
    for c in tuning.candidates:
        marks = [m for m, k in (("decode", tuning.n_threads), ("prompt", tuning.n_threads_batch))
                 if k == c.threads]
        typer.echo(f"  {c.threads:3d} threads: decode {c.decode_tok_s:7.1f} tok/s, prompt "
                   f"{c.prompt_tok_s:8.1f} tok/s  {'best ' + ', '.join(marks) if marks else ''}")
    typer.echo(f"n_threads = {tuning.n_threads}, n_threads_batch = {tuning.n_threads_batch}"
               + (f" written to {written}" if written else " (--save keeps them)"))


def _speculative(expert: str | None, rounds: int, tokens: int, save: bool, as_json: bool) -> None:
    from ..settings import load_settings
    from ..tune import save_speculative, tune_speculative
    from ..universe import current_universe

    catalog = user_catalog()
    log = None if as_json else typer.echo
    results = tune_speculative(catalog, current_universe(catalog), load_settings(), expert,
                               rounds, tokens, log=log)
    written = save_speculative(results) if save else None
    if as_json:
        echo_json({"experts": [r.model_dump() for r in results],
                   "saved": str(written) if written else None})
        return
    for r in results:
        typer.echo(f"{r.expert} on {r.backend}, {r.rounds} rounds of {r.tokens} tokens:")
        for o in r.options:
            rates = ", ".join(f"{k} {v:6.1f} tok/s" + (f" ({o.speedup[k]:.2f}x)" if o.speedup
                                                       else "") for k, v in o.tok_s.items())
            typer.echo(f"  {o.option:24} {rates}{'  chosen' if o.option == r.chosen else ''}")
        typer.echo(f"  speculative: {r.chosen or 'none pays'}")
    if written:
        typer.echo(f"written to {written}")
    elif any(r.chosen for r in results):
        typer.echo("(--save keeps the choice)")
