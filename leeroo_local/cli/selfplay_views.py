"""What self-play and onboarding show on the terminal, shared by `selfplay` and `add --onboard`:
progress bars driven by the loop's events, and the onboarding verdict."""

from __future__ import annotations


class Bars:
    """Rich progress bars on stderr, one per stage of a round, driven by the loop's events."""

    def __init__(self, enabled: bool):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        self.enabled = enabled
        self.bars = Progress("{task.description}", BarColumn(), MofNCompleteColumn(),
                             TimeElapsedColumn(), console=Console(stderr=True),
                             disable=not enabled)
        self.current = None

    def __enter__(self):
        self.bars.__enter__()
        return self

    def __exit__(self, *exc):
        return self.bars.__exit__(*exc)

    def update(self, event) -> None:
        if not self.enabled or event.stage == "done":
            return
        if event.task is None:
            label = {"validation": "validation set", "onboarding": "onboarding"}.get(
                event.stage, f"round {event.round}: {event.stage}")
            self.current = self.bars.add_task(label, total=event.total, completed=event.done)
        elif self.current is not None:
            self.bars.update(self.current, completed=event.done)


def pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def render_verdict(report) -> None:
    from rich.console import Console
    from rich.table import Table

    from ..units import format_size

    console = Console()
    console.print(f"{report.expert} ({report.quant_run}) on {report.questions} stored questions: "
                  f"accuracy {pct(report.single_score)}; universe {', '.join(report.universe)} "
                  f"{'routed accuracy' if report.objective == 'routed' else 'S(U)'} "
                  f"{pct(report.universe_score)}")
    table = Table("quant", "memory", "fits", "gain", "quality")
    for o in report.options:
        table.add_row(o.quant, format_size(o.memory_bytes, binary=False), "yes" if o.fits else "no",
                      f"{100 * o.gain:+.1f}", o.quality)
    console.print(table)
    console.print(f"Budget: {report.budget}")
    console.print(f"Verdict: {report.reason}")
