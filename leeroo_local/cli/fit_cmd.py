"""`leeroo-local fit`: choose the universe of experts for a memory budget."""

from __future__ import annotations

import typer

from .common import check_choice, echo_json, user_catalog


def register(app: typer.Typer) -> None:
    app.command("fit")(fit)


def fit(
    vram: str = typer.Option(None, "--vram", help="GPU memory for the experts, e.g. 24GB."),
    ram: str = typer.Option(None, "--ram", help="System memory for the experts, e.g. 32GB."),
    ctx: int = typer.Option(4096, "--ctx", min=1, help="Context each expert must hold (tokens)."),
    swap: bool = typer.Option(False, "--swap", help="Load experts on demand, one at a time."),
    max_experts: int = typer.Option(None, "--max-experts", min=1,
                                    help="Largest universe (default: 4 with --swap, else none)."),
    disk: str = typer.Option(None, "--disk", help="Disk for the experts' files (with --swap)."),
    data: str = typer.Option(None, "--data", help="One outcome source: mmlu-pro, llmrouter (the "
                             "shipped mixed-task data) or a folder (default: both shipped "
                             "sources side by side; the store is not merged in)."),
    base: bool = typer.Option(False, "--base", help="Let base models (no chat template) join; "
                              "chat, serve and editors need instruct experts."),
    from_store: bool = typer.Option(False, "--from-store",
                                    help="Use the evaluation store's outcomes (all sources)."),
    min_gain: float = typer.Option(0.0, "--min-gain", min=0.0,
                                   help="Stop when no expert adds more than this many points."),
    objective: str = typer.Option("routed", "--objective",
                                  help="routed (the shipped router's cross-validated accuracy) "
                                       "or oracle (the paper's S(U))."),
    min_share: float = typer.Option(2.0, "--min-share", min=0.0, max=100.0,
                                    help="Drop a member the router sends fewer than this % of "
                                         "questions (routed objective)."),
    host: list[str] = typer.Option(None, "--host", help="Place experts on several machines: "
                                   "NAME=SIZE (RAM) or NAME=gpu:SIZE, repeated; `local` is this "
                                   "machine (as are --vram/--ram), other names are `hosts add`'s."),
    network_penalty: float = typer.Option(0.2, "--network-penalty", min=0.0, max=100.0,
                                          help="With --host: points of accuracy charged per "
                                               "question routed to another host."),
    save: bool = typer.Option(False, "--save", help="Save the universe for run, serve and chat."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Pick the most complementary experts (and their quantizations) that fit the budget."""
    from ..fit.plan import FitBudget, SourceData, plan_sources
    from ..fit.outcome_sources import fit_degradation, fit_sources, placement_source
    from ..store import open_db
    from ..units import parse_size

    if data and from_store:
        raise typer.BadParameter("use --data or --from-store, not both")
    check_choice(FitBudget, "objective", objective, "--objective")
    try:
        vram_b, ram_b = (parse_size(vram) if vram else None), (parse_size(ram) if ram else None)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    hosts = _hosts(host, vram_b, ram_b) if host else None
    try:
        budget = FitBudget(
            vram_bytes=None if hosts else vram_b,
            ram_bytes=sum(h.memory_bytes for h in hosts) if hosts else ram_b,
            disk_bytes=parse_size(disk) if disk else None, n_ctx=ctx,
            mode="swap" if swap else "resident", max_experts=max_experts, min_gain=min_gain / 100,
            objective=objective, min_share=min_share / 100, include_base=base,
        )
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise typer.BadParameter(_first_error(exc)) from None
    sources = fit_sources(data, open_db() if from_store else None)
    log = None if as_json else (lambda line: typer.echo(f"cross-validating the router "
                                                        f"(once per data, then cached): {line}"))
    if hosts:
        from ..fit.hosts_plan import plan_hosts

        src = placement_source(sources)
        report = plan_hosts(user_catalog(), src.matrix, hosts, budget, data_label=src.label,
                            degradation=fit_degradation(), log=log,
                            network_penalty=network_penalty / 100)
    else:
        report = plan_sources(user_catalog(), [SourceData(s.name, s.label, s.matrix)
                                               for s in sources],
                              budget, degradation=fit_degradation(), log=log)
    saved, theirs = None, {}
    if save and hosts:
        from ..provision.hosts import save_placed

        saved, theirs = save_placed(report.universe(), user_catalog())
    elif save:
        from ..universe import save_universe

        saved = save_universe(report.universe())
    from ..fit.drafts import for_universe

    drafts = for_universe(user_catalog(), report.universe())  # the chosen members, from headers
    if as_json:
        echo_json({**report.model_dump(), "drafts": drafts, "saved": str(saved) if saved else None,
                   **({"saved_hosts": {k: str(v) for k, v in theirs.items()}} if hosts else {})})
        return
    _render(report, saved, theirs)
    for target, candidates in drafts.items():
        typer.echo(f"draft candidates for {target} (same tokenizer, smaller): "
                   f"{', '.join(candidates)}; `leeroo-local tune --speculative` measures them")


def _hosts(specs: list[str], vram: int | None, ram: int | None):
    from ..errors import ConfigError
    from ..fit.hosts_plan import hosts_of

    try:
        return hosts_of(specs, vram, ram)
    except ConfigError as exc:
        raise typer.BadParameter(str(exc)) from None


def _first_error(exc: ValueError) -> str:
    from ..errors import first_error

    return first_error(exc)[1] if callable(getattr(exc, "errors", None)) else str(exc)


def _quality(m) -> str:
    if m.quality_basis == "outcomes":
        return "outcomes"
    return f"{m.quality.split(' ')[0]} {m.quality_basis}"


_STRATEGY = {"cost-benefit": "cost-benefit greedy", "plain": "plain greedy", "single": "best single"}


def _render(report, saved, theirs=None) -> None:
    from rich.console import Console
    from rich.table import Table

    from ..units import format_size

    def size(n: int) -> str:
        return format_size(n, binary=False)

    def pct(x: float) -> str:
        return f"{100 * x:.2f}"

    console = Console()
    routed = report.objective == "routed"
    pred = report.predictions
    console.print(f"Budget: {report.rule}")
    console.print(f"Data: {report.data} ({report.n_questions} questions, "
                  f"{report.n_candidates} candidate expert/quantization pairs); router: the "
                  f"shipped trainer's policy, {pred.folds}-fold cross-validated "
                  f"({_SOURCE[pred.source].format(s=pred.seconds)})")
    measure = "routed" if routed else "S(U)"
    where = ["host"] if report.hosts else []
    table = Table("#", "expert", "quant", *where, "memory", "gain", measure, "share",
                  "oracle share", "quality")
    for i, m in enumerate(report.experts, 1):
        table.add_row(str(i), m.id, m.quant, *([m.host or ""] if report.hosts else []),
                      size(m.memory_bytes), f"{100 * m.gain:+.2f}", pct(m.score),
                      f"{100 * m.share:.1f}%", f"{100 * m.oracle_share:.0f}%", _quality(m))
    console.print(table)
    capacity = report.budget.capacity_bytes
    for h in report.hosts or []:
        kind = "GPU" if h.gpu else "RAM"
        console.print(f"Host {h.name}{' (this machine)' if h.local else ''}: "
                      f"{size(h.used_bytes)} of {kind} {size(h.capacity_bytes)}, "
                      f"{', '.join(h.members) or 'nothing placed'}")
        for command in h.pull:
            console.print(f"  on {h.name}: {command}")
    if report.mode == "resident":
        console.print(f"Total memory {size(report.total_memory_bytes)} of {size(capacity)}"
                      + (f" on {len(report.hosts)} hosts" if report.hosts else ""))
    else:
        console.print(f"Largest expert {size(max(m.memory_bytes for m in report.experts))} of "
                      f"{size(capacity)}; files {size(report.total_disk_bytes)}")
        console.print(f"Expected swaps: {100 * report.swap_share:.1f}% of requests need a load "
                      "(one expert loaded at a time)")
    b = report.best_single
    console.print(f"Expected accuracy, routed: {pct(report.routed_score)}% (the router's "
                  "cross-validated picks among the members, after quantization factors)")
    console.print(f"Oracle S(U): {pct(report.oracle_score)}% (every question sent to its best "
                  "member: an upper bound, not what the router gets)")
    console.print(f"Best single expert that fits: {b.id} {b.quant} ({size(b.memory_bytes)}), "
                  f"{pct(b.score)}%")
    for src in report.sources:
        routed_src = "no member has outcomes here" if src.routed_score is None else \
            f"routed {pct(src.routed_score)}%"
        single = src.best_single
        best = "none fits" if single is None else \
            f"{single.id} {single.quant} {pct(single.score)}%"
        console.print(f"  on {src.name} ({src.n_questions} questions): {routed_src}; best single "
                      f"that fits there: {best}")
    if report.sources:
        console.print("  (expected accuracy and best single above: the mean over the sources, "
                      "each source weighing the same; an expert is scored only where it has "
                      "outcomes)")
    lead = report.routed_score - b.score
    if report.recommend == "universe":
        console.print(f"Recommended: this universe, {100 * lead:+.2f} points over the single "
                      f"expert (noise {100 * report.noise:.2f})")
    elif len(report.experts) > 1:
        console.print(f"Recommended: the single expert {b.id} {b.quant}: the universe's lead "
                      f"({100 * lead:+.2f} points) is within the cross-validation's noise "
                      f"({100 * report.noise:.2f}); `fit --max-experts 1` chooses it")
    alt = ", ".join(f"{_STRATEGY[k]} {100 * v:.2f}" for k, v in report.alternatives.items())
    console.print(f"Chosen by: {_STRATEGY[report.strategy]}, maximising "
                  f"{'routed accuracy' if routed else 'oracle S(U)'} ({alt})")
    if report.dropped:
        console.print(f"Dropped for earning under {100 * report.min_share:g}% of questions: "
                      f"{', '.join(report.dropped)}")
    console.print(f"gain, {measure}: points of {'routed accuracy' if routed else 'S(U)'} as each "
                  "expert joins; share: questions the router sends it; oracle share: questions "
                  "it is the best member for; quality: measured outcomes, or full-precision "
                  "outcomes x the quantization's factor, from `quant eval` of this expert, "
                  "calibrated by quant evals of others, or the default table "
                  "(leeroo_local/degradation.py)")
    for note in report.notes:
        console.print(f"Note: {note}")
    by_reason: dict[str, list[str]] = {}
    for s in report.skipped:
        name = s.id + (f" {s.quant}" if s.quant else "")
        by_reason.setdefault(s.reason, []).append(name)
    for reason, names in by_reason.items():
        console.print(f"Skipped ({reason}): {', '.join(names)}")
    if saved:
        console.print(f"Saved to {saved}")
    for name, path in (theirs or {}).items():
        console.print(f"Universe for host {name}: {path} (copy it there as its universe.json)")


_SOURCE = {"shipped": "predictions shipped with the data", "cache": "predictions cached",
           "computed": "predictions computed in {s:.0f} s, now cached"}
