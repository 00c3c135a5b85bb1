"""`leeroo-local policy train|route|eval`: the learned routing policy (ONNX)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from .common import echo_json

policy_app = typer.Typer(help="The routing policy: train it, route with it, evaluate it.",
                         no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(policy_app, name="policy")


def _split(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


@policy_app.command("train")
def train(
    out: Path = typer.Option(..., "--out", help="Policy folder to write (replaced if a policy)."),
    data: Path = typer.Option(None, "--data", help="Outcome folder (outcomes.csv.gz, questions, experts.csv)."),
    store: str = typer.Option(None, "--store", help="Train on the evaluation store: source name(s), comma-separated, or 'all'."),
    experts: str = typer.Option(None, "--experts", help="Only these outcome columns, comma-separated."),
    names: str = typer.Option("data", "--names", help="Name outputs by 'data' column or by 'catalog' id (data_column)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the held-out split that picks the L2 strength."),
    as_json: bool = typer.Option(False, "--json", help="Print the training report as JSON."),
) -> None:
    """Train a policy on outcomes and write its ONNX graph and labels to --out."""
    from ..policy.naming import catalog_names
    from ..policy.train import train_policy
    from ..fit.outcome_sources import training_matrix
    from .common import user_catalog

    matrix = training_matrix(data, store)
    rename, costs, unit = None, None, None
    if names == "catalog":
        matrix, rename, costs, unit = catalog_names(matrix, user_catalog(), _split(experts))
    elif names != "data":
        raise typer.BadParameter("--names must be 'data' or 'catalog'")
    report = train_policy(matrix, out, _split(experts) if names == "data" else None, seed,
                          rename=rename, costs=costs, cost_unit=unit,
                          source=str(data) if data else f"evaluation store: {store}")
    if as_json:
        echo_json(report.to_dict())
        return
    for w in report.warnings:
        typer.echo(f"warning: {w}", err=True)
    model = (f"L2 {report.l2_x_n:g}/n" if report.l2_x_n is not None else
             "base rates only (the text did not order the experts better on held-out questions)")
    typer.echo(f"trained {out}: {len(report.experts)} experts, {report.questions} questions, "
               f"{report.vocab} n-grams, {model}; log loss {report.train_log_loss:.4f} "
               f"(base rates {report.base_log_loss:.4f}); {report.size_bytes / 1e6:.1f} MB in "
               f"{report.seconds:.1f} s")


@policy_app.command("route")
def route(
    policy: Path = typer.Option(..., "--policy", help="Policy folder."),
    questions: Path = typer.Option(..., "--questions", help="questions.jsonl(.gz): id, question, options."),
    cost_weight: float = typer.Option(0.0, "--cost-weight", min=0.0, help="L: score points per unit of cost."),
    max_mean_cost: float = typer.Option(
        None, "--max-mean-cost", min=0.0,
        help="Hard budget on the batch's mean cost: the smallest cost weight (>= L) whose choices "
        "fit it on this batch, and no choice that would leave the rest unaffordable."),
) -> None:
    """Route each question; one JSON object per line: id, expert, scores."""
    from ..store.outcomes import read_questions
    from ..policy import load_policy
    from ..policy.features import prompt_text

    router = load_policy(policy)
    records = list(read_questions(questions).values())
    texts = [prompt_text(str(r["question"]), r.get("options") or None) for r in records]
    for rec, d in zip(records, router.route_batch(texts, cost_weight, max_mean_cost)):
        typer.echo(json.dumps({"id": rec["id"], "expert": d.expert,
                               "scores": {e: round(v, 4) for e, v in d.scores.items()}}))


@policy_app.command("eval")
def eval_(
    policy: Path = typer.Option(..., "--policy", help="Policy folder."),
    data: Path = typer.Option(..., "--data", help="Outcome folder to judge it on (held-out questions)."),
    plot: Path = typer.Option(None, "--plot", help="Also draw the accuracy-cost curve to this PNG (the plot extra)."),
) -> None:
    """Accuracy and cost of policy, best single expert and oracle, the curve over L, AIQ (JSON)."""
    from ..policy import load_policy
    from ..policy.evaluate import evaluate_policy

    report = evaluate_policy(load_policy(policy), data)
    if plot is not None:
        from ..policy.plot import plot_report

        report["plot"] = str(plot_report(report, plot))
    echo_json(report)
