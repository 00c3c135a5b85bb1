"""Latency of the last message: route, load, first token, decode speed, total, tokens."""

from __future__ import annotations

from rich.table import Table
from textual.widgets import Static

from ...runtime.service import Result, Route
from .. import format as fmt

FIELDS = ("route", "load", "first token", "decode", "total", "tokens")


class LatencyPanel(Static):
    """Fields fill in as the request advances: route first, load when the expert is ready,
    the rest with the result."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.values: dict[str, str] = dict.fromkeys(FIELDS, fmt.DASH)
        self.border_title = "Latency"

    def on_mount(self) -> None:
        self._refresh()

    def reset(self) -> None:
        self.values = dict.fromkeys(FIELDS, fmt.DASH)
        self._refresh()

    def routed(self, route: Route) -> None:
        self.values = {**dict.fromkeys(FIELDS, fmt.DASH), "route": fmt.seconds(route.route_s),
                       "load": "…"}
        self._refresh()

    def loaded(self, load_s: float) -> None:
        self.values["load"] = fmt.seconds(load_s) if load_s else "warm"
        self.values["first token"] = "…"
        self._refresh()

    def first_token(self, after_s: float) -> None:
        """As seen by the interface while the answer streams; the result replaces it with the
        service's own measure."""
        self.values["first token"] = fmt.seconds(after_s)
        self._refresh()

    def show(self, result: Result) -> None:
        t = result.timings
        self.values = {
            "route": fmt.seconds(t.route_s),
            "load": fmt.seconds(t.load_s) if t.load_s else "warm",
            "first token": fmt.seconds(t.ttft_s),
            "decode": fmt.rate(t.tokens_per_s),
            "total": fmt.seconds(t.total_s),
            "tokens": f"{result.tokens.get('prompt') or fmt.DASH} in · "
                      f"{result.tokens.get('completion', 0)} out",
        }
        self._refresh()

    def _refresh(self) -> None:
        table = Table(box=None, show_header=False, pad_edge=False, expand=True)
        table.add_column(style="dim", no_wrap=True)
        table.add_column(justify="right", no_wrap=True)
        for name in FIELDS:
            table.add_row(name, self.values[name])
        self.update(table)
