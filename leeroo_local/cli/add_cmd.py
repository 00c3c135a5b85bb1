"""`leeroo-local add SOURCE`: register a hub, local or Ollama GGUF as an expert; `--onboard`
also pulls it, judges it against the universe and, if it joins, retrains the routing policy."""

from __future__ import annotations

import typer

from .common import echo_json


def register(app: typer.Typer) -> None:
    app.command("add")(add)


def add(
    source: str = typer.Argument(..., metavar="SOURCE", help="hf:OWNER/REPO, "
                                 "hf:OWNER/REPO/FILE.gguf, ollama:NAME[:TAG] or a GGUF path."),
    expert_id: str = typer.Option(None, "--id", help="Catalog id (default: from the source)."),
    quant: str = typer.Option(None, "--quant", help="Quantization to pull and onboard "
                              "(default: Q4_K_M if offered)."),
    onboard: bool = typer.Option(False, "--onboard", help="Pull it, run it on the stored "
                                 "questions, report its gain and retrain the policy."),
    questions: int = typer.Option(30, "--questions", min=1, help="With --onboard: stored "
                                  "questions it is scored on."),
    min_gain: float = typer.Option(0.0, "--min-gain", min=0.0, help="With --onboard: points "
                                   "of gain it must add to join."),
    seed: int = typer.Option(0, "--seed", help="With --onboard: seed of the question sample."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Add an expert from the hub, a local file or Ollama (weights pulled with --onboard)."""
    from ..provision.add_expert import add as add_expert
    from ..universe import current_universe
    from .common import user_catalog

    n_ctx = current_universe(user_catalog()).n_ctx
    result = add_expert(source, expert_id, quant, n_ctx=n_ctx)
    if not onboard:
        echo_json(result.model_dump()) if as_json else _render(result)
        return
    if not as_json:
        _render(result)
    report = _onboard(result.id, questions, min_gain / 100, seed, quiet=as_json)
    if as_json:
        echo_json({"added": result.model_dump(), "onboard": report.model_dump()})
    else:
        _render_onboard(report)


def _onboard(expert_id: str, questions: int, min_gain: float, seed: int, quiet: bool):
    from ..provision.ensure import ensure_local
    from ..selfplay.adopt import adopt
    from .common import user_catalog
    from .selfplay_views import Bars

    catalog = user_catalog()
    expert = catalog.get(expert_id)
    progress = Bars(enabled=not quiet)
    try:
        ensure_local(catalog, expert, expert.quant(), progress=None if quiet else True)
        with progress:
            return adopt(expert_id, questions, seed, min_gain, on_event=progress.update)
    except KeyboardInterrupt:
        typer.echo("stopped: the download and every outcome scored so far are kept; rerun the "
                   "same command to continue", err=True)
        raise typer.Exit(130) from None


def _render(r) -> None:
    from rich.console import Console
    from rich.table import Table

    from ..units import format_size

    console = Console()
    verb = "already in the catalog" if r.reused else f"added to {r.catalog_file}"
    a = r.arch
    console.print(f"{r.id}: {verb} ({r.kind}; {a.architecture}, {a.params_b:g}B params, "
                  f"{a.n_layers} layers, vocabulary {a.n_vocab:,}, context {a.n_ctx_train:,})")
    if r.header_bytes is not None:
        console.print(f"header read with {format_size(r.header_bytes, binary=False)} of "
                      f"{format_size(r.header_file_bytes, binary=False)} "
                      f"({100 * r.header_bytes / r.header_file_bytes:.1f}%)")
    table = Table("quant", "size", f"memory at {r.n_ctx} ctx", "default")
    for q in r.quants:
        table.add_row(q.type, format_size(q.size_bytes, binary=False),
                      format_size(q.memory_bytes, binary=False),
                      "yes" if q.type == r.default_quant else "")
    console.print(table)
    for why in r.skipped:
        console.print(f"left out: {why}")
    console.print(f"next: `leeroo-local add {r.origin} --onboard` (or `leeroo-local fit`) to "
                  "judge it against the universe")


def _render_onboard(report) -> None:
    from rich.console import Console

    from .selfplay_views import render_verdict

    render_verdict(report.verdict)
    console = Console()
    if report.joined:
        console.print(f"Universe: {', '.join(report.universe)} (saved)")
        console.print(f"Policy: {report.retrain.action}: {report.retrain.detail}")
    else:
        console.print("Not added to the universe; its outcomes are stored for `fit --from-store`.")
