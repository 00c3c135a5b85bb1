"""`leeroo-local quant SOURCE --to TYPE` makes a quantization; `quant eval REF CAND` measures one."""

from __future__ import annotations

from pathlib import Path

import typer
from typer.core import TyperGroup

from .common import echo_json, user_catalog


class _MakeByDefault(TyperGroup):
    """`quant SOURCE ...` runs the hidden `make` command; `quant eval ...` the subcommand."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["make", *args]
        return super().parse_args(ctx, args)


quant_app = typer.Typer(
    cls=_MakeByDefault, no_args_is_help=True,
    subcommand_metavar="SOURCE --to TYPE [OPTIONS] | eval REFERENCE CANDIDATE [OPTIONS]",
    help="Make a quantization: `quant SOURCE --to TYPE` (SOURCE: expert id, id@QUANT or a GGUF "
         "file; `quant SOURCE --help` lists its options). Measure one: `quant eval REFERENCE "
         "CANDIDATE`.")


def register(app: typer.Typer) -> None:
    app.add_typer(quant_app, name="quant")


@quant_app.command("make", hidden=True)
def make(
    source: str = typer.Argument(..., metavar="SOURCE",
                                 help="Expert id (its best local file), id@QUANT, or a GGUF path."),
    to: str = typer.Option(..., "--to", help="Quantization to make, e.g. Q4_0, Q3_K_S, Q2_K."),
    out: Path = typer.Option(None, "--out", help="Output file (default: the models folder)."),
    allow_requantize: bool = typer.Option(False, "--allow-requantize",
                                          help="Allow an already quantized source."),
    expert: str = typer.Option(None, "--expert", help="Expert a GGUF path belongs to."),
    no_register: bool = typer.Option(False, "--no-register",
                                     help="Only write the file; do not add it to the catalog."),
    embeddings: str = typer.Option(None, "--embeddings",
                                   help="Token embeddings type: 'same' (as TYPE) or e.g. Q4_0 "
                                        "(default: llama.cpp's choice, 6+ bits)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing output file."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Quantize with llama.cpp's quantizer and register the result as the expert's quantization."""
    import sys
    import time

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from ..quant.make import make_quant
    from ..units import format_size

    console = Console(stderr=True)
    started, seen = time.perf_counter(), [0]
    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  "tensors", TimeElapsedColumn(), console=console, transient=True,
                  disable=as_json or not sys.stderr.isatty()) as bar:
        task = bar.add_task(f"quantizing to {to.upper()}", total=None)

        def progress(done: int, total: int) -> None:
            seen[0] = total
            bar.update(task, completed=done, total=total)

        made = make_quant(
            user_catalog(), source, to, out=out, allow_requantize=allow_requantize, expert=expert,
            register=not no_register, embeddings=embeddings, force=force,
            progress=progress)
    elapsed = time.perf_counter() - started
    if as_json:
        echo_json({k: str(v) if isinstance(v, Path) else v for k, v in made.__dict__.items()})
        return
    size = lambda n: format_size(n, binary=False)  # noqa: E731
    typer.echo(f"{made.path}  {made.type}, {size(made.size_bytes)} "
               f"({made.size_bytes / made.source_bytes:.0%} of the {made.source_type} source, "
               f"{size(made.source_bytes)}); {seen[0]} tensors in {elapsed:.1f} s")
    if made.registered:
        typer.echo(f"registered as {made.expert} {made.type} in {made.registered}; measure it with "
                   f"`leeroo-local quant eval {made.expert} {made.expert}@{made.type}`")


@quant_app.command("eval")
def eval_(
    reference: str = typer.Argument(..., help="Reference: expert id, id@QUANT or a GGUF path."),
    candidate: str = typer.Argument(..., help="Candidate of the same model, same forms."),
    tokens: int = typer.Option(1024, "--tokens", min=1,
                               help="Tokens of the text sample (whole 512-token chunks)."),
    questions: int = typer.Option(40, "--questions", min=0, help="MMLU-Pro questions to compare."),
    threads: int = typer.Option(None, "--threads", min=1, help="llama.cpp threads (default: half the cores)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Measure what CANDIDATE lost against REFERENCE; stored for `fit`."""
    from ..quant.evaluate import evaluate
    from ..store import open_db

    with _spinner("measuring (both models on the text sample, then the questions)", as_json):
        result = evaluate(user_catalog(), reference, [candidate], tokens=tokens,
                          questions=questions, threads=threads, db=open_db())[0]
    if as_json:
        echo_json(result.model_dump())
        return
    render_eval(result)


def _spinner(text: str, quiet: bool):
    from rich.console import Console

    console = Console(stderr=True)
    return console.status(text) if not quiet else _Null()


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def render_eval(r) -> None:
    from rich.console import Console
    from rich.table import Table

    from ..units import format_size

    def name(f) -> str:
        return f"{f.expert} {f.quant}" if f.expert else Path(f.path).name

    def pct(x) -> str:
        return "-" if x is None else f"{100 * x:.1f}%"

    table = Table("", "reference", "candidate")
    table.add_row("file", name(r.reference), name(r.candidate))
    table.add_row("type", r.reference.type, r.candidate.type)
    table.add_row("size", format_size(r.reference.size_bytes, binary=False),
                  f"{format_size(r.candidate.size_bytes, binary=False)} "
                  f"({r.candidate.size_bytes / r.reference.size_bytes:.0%})")
    table.add_row("perplexity", f"{r.ppl_reference:.3f}", f"{r.ppl_candidate:.3f} "
                  f"({r.ppl_candidate / r.ppl_reference - 1:+.1%})")
    table.add_row("MC accuracy", pct(r.mc_accuracy_reference), pct(r.mc_accuracy_candidate))
    console = Console()
    console.print(table)
    console.print(f"KL(ref || cand): mean {r.kl_mean:.5f}, p99 {r.kl_p99:.4f}, max {r.kl_max:.3f} "
                  f"nats; top-1 agreement {pct(r.top1_agreement)} over {r.tokens_scored} tokens "
                  f"of {r.sample}")
    console.print(f"MC agreement {pct(r.mc_agreement)} ({r.mc_agreed}/{r.mc_questions} MMLU-Pro "
                  f"questions); {r.seconds:.1f} s; stored as measurement {r.id}")
