"""`leeroo-local selfplay`: rounds of generate or draw, route, evaluate, store, retrain; or
`--onboard EXPERT`: should a new expert join the universe, and at which quantization."""

from __future__ import annotations

from pathlib import Path

import typer

from ..selfplay.config import SelfPlayConfig
from .common import check_choice, echo_json, model_option, provision_at_start
from .selfplay_views import Bars, pct, render_verdict


def register(app: typer.Typer) -> None:
    app.command("selfplay")(selfplay)


def _config(name: str, flag: str, note: str = ""):
    """The option of a SelfPlayConfig field: its default, description and limits."""
    return model_option(SelfPlayConfig, name, flag, note=note)


def selfplay(
    rounds: int = typer.Option(1, "--rounds", min=1, help="Rounds to run (an interrupted round "
                               "is finished first and counts among them)."),
    questions: int = _config("questions", "--questions",
                             " With --onboard: questions sampled from the store."),
    generator: str = _config("generator", "--generator"),
    judge: str = _config("judge", "--judge"),
    epsilon: float = _config("epsilon", "--epsilon"),
    threshold: int = _config("threshold", "--threshold"),
    seed: int = _config("seed", "--seed"),
    source: Path = _config("source", "--source"),
    evaluator: str = _config("evaluator", "--evaluator"),
    validation: int = _config("validation", "--validation"),
    keep: str = _config("keep", "--keep"),
    onboard: str = typer.Option(None, "--onboard", help="Judge this expert for the universe "
                                "instead of running rounds."),
    min_gain: float = typer.Option(0.0, "--min-gain", min=0.0, help="With --onboard: points "
                                   "of gain it must add to join."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Train the routing policy by self-play, or judge a new expert (--onboard)."""
    from pydantic import ValidationError

    from ..errors import first_error
    from ..selfplay.loop import SelfPlay
    from ..selfplay.retrain import PolicyStep
    from ..runtime.service import Service
    from ..settings import load_settings
    from ..store import open_db

    check_choice(SelfPlayConfig, "evaluator", evaluator, "--evaluator")
    check_choice(SelfPlayConfig, "keep", keep, "--keep")
    if source is not None and not source.is_file():
        raise typer.BadParameter(f"{source}: no such file", param_hint="--source")
    try:
        config = SelfPlayConfig(
            questions=questions, generator=generator, judge=judge, evaluator=evaluator,
            epsilon=epsilon, threshold=threshold, seed=seed,
            source=str(source) if source else None, validation=validation, keep=keep)
    except ValidationError as exc:
        raise typer.BadParameter(first_error(exc)[1]) from None
    service = Service(load_settings(), client="selfplay")
    progress = Bars(enabled=not as_json)
    try:
        # Its requests never fetch: the universe's files, and those of the experts it names.
        provision_at_start(service, quiet=as_json)
        for named in dict.fromkeys(x for x in (onboard, generator, judge) if x):
            provision_at_start(service, named, quiet=as_json)
        policy = PolicyStep(service.settings, service.universe, service.catalog, seed=seed)
        loop = SelfPlay(service, open_db(), config, policy, on_event=progress.update)
        with progress:
            if onboard:
                from ..selfplay.onboarding import onboard as run_onboard

                report = run_onboard(loop, onboard, questions, min_gain / 100)
            else:
                reports = loop.run(rounds)
    except KeyboardInterrupt:
        typer.echo("stopped: every outcome scored so far is stored; rerun the same command to "
                   "continue the round", err=True)
        raise typer.Exit(130) from None
    finally:
        service.close()
    if as_json:
        echo_json(report.model_dump() if onboard else [r.model_dump() for r in reports])
    elif onboard:
        render_verdict(report)
    else:
        _render(reports)


def _render(reports) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table("round", "questions", "outcomes", "signal", "val acc", "candidate", "policy",
                  "time", "energy")
    for r in reports:
        table.add_row(
            f"{r.number}{'*' if r.resumed else ''}",
            f"{r.questions}" + (f" (-{r.rejected})" if r.rejected else ""),
            f"{r.scored}" + (f" ({r.unscorable + r.failed} lost)" if r.unscorable or r.failed
                             else ""),
            f"{pct(r.signal_share)}", pct(r.retrain.validation_accuracy),
            pct(r.retrain.candidate_accuracy), r.retrain.action, f"{r.seconds:.1f} s",
            f"{r.energy_j:.0f} J")
    console.print(table)
    methods = sorted({r.energy_method for r in reports})
    console.print("questions (-rejected generations); outcomes stored (lost: unscorable or "
                  "failed); signal: share of questions with two or more scores on which the "
                  "experts disagree; val acc: accuracy on the fixed validation set of the policy "
                  "in use after the round; candidate: the policy trained this round; "
                  f"* resumed; energy {', '.join(methods)}")
    for r in reports:
        chosen = ", ".join(f"{k} {v}" for k, v in sorted(r.chosen_by.items()))
        console.print(f"Round {r.number}: experts chosen: {chosen}; {r.retrain.detail}")
    for r in reports:
        console.print(f"Round {r.number}: {r.retrain.detail}")
