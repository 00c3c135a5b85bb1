"""Energy of the last message: joules (or watt-hours), measured or estimated, and from what."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from ...runtime.service import Result
from .. import format as fmt


class EnergyPanel(Static):
    """How much energy the last answer took, and whether a counter measured it (RAPL, NVML) or
    it was estimated from CPU time."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.result: Result | None = None
        self.border_title = "Energy"

    def on_mount(self) -> None:
        self._refresh()

    def show(self, result: Result | None) -> None:
        self.result = result
        self._refresh()

    def _refresh(self) -> None:
        if self.result is None:
            self.update(Text(fmt.DASH, style="dim"))
            return
        e = self.result.energy
        out = self.result.tokens.get("completion", 0)
        text = Text.assemble((fmt.energy(e.joules), "bold"), "  ",
                             (e.method, "green" if e.method == "measured" else "yellow"))
        if out and e.joules:
            text.append(f"\n{fmt.energy(e.joules / out)} per token", style="dim")
        if e.source:
            text.append(f"\n{e.source}", style="dim")
        self.update(text)
