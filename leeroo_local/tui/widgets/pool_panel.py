"""The pool: each universe expert, loaded or not, its memory, and its keep-alive left."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from .. import format as fmt


def state_of(row: dict) -> tuple[str, str]:
    """(word, style) for one expert's row of Service.status()."""
    if row.get("remote"):
        return "remote", "cyan"
    if row.get("loading"):
        return "loading", "yellow"
    if row.get("busy"):
        queued = row.get("queued") or 0
        return ("busy" + (f" +{queued}" if queued else "")), "magenta"
    if row.get("loaded"):
        return "loaded", "green"
    return "cold", "dim"


class PoolPanel(Static):
    """Rows of Service.status(), refreshed by the screen on a timer."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.rows: list[dict] = []
        self.border_title = "Pool"

    def on_mount(self) -> None:
        self._refresh()

    def show(self, rows: list[dict]) -> None:
        self.rows = rows
        self._refresh()

    def _refresh(self) -> None:
        table = Table(box=None, show_header=True, pad_edge=False, expand=True, header_style="bold")
        table.add_column("expert", no_wrap=True, overflow="ellipsis", ratio=1)
        table.add_column("state", no_wrap=True)
        table.add_column("memory", justify="right", no_wrap=True)
        table.add_column("alive", justify="right", no_wrap=True)
        for row in self.rows:
            word, style = state_of(row)
            table.add_row(row["expert"], Text(word, style=style), fmt.memory(row.get("memory_bytes")),
                          fmt.keep_alive(row.get("keep_alive_s")))
        self.update(table)
