"""The pool: each universe expert, loaded or not, its memory, and its keep-alive left; then each
host (`leeroo-local hosts add`): up, down or backing off, when last checked, its members."""

from __future__ import annotations

import time

from rich.console import Group
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


HOST_STYLE = {"up": "green", "down": "red", "backing-off": "yellow", "unknown": "dim"}


def host_line(host: dict, now: float) -> Text:
    """One host: name, state (with the back-off left), age of the last check, URL, members."""
    state = host["state"] + (f" {host['backoff_s']:.0f}s" if host.get("backoff_s") else "")
    checked = (f"{max(0.0, now - host['last_check']):.0f}s ago" if host.get("last_check")
               else "never checked")
    line = Text(f"{host['name']} ")
    line.append(state, style=HOST_STYLE.get(host["state"], ""))
    line.append(f" {checked} {host['url']}", style="dim")
    if host.get("members"):
        line.append(f" {', '.join(host['members'])}")
    return line


class PoolPanel(Static):
    """Rows of Service.status(), refreshed by the screen on a timer."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.rows: list[dict] = []
        self.hosts: list[dict] = []
        self.border_title = "Pool"

    def on_mount(self) -> None:
        self._refresh()

    def show(self, rows: list[dict], hosts: list[dict] | None = None) -> None:
        self.rows = rows
        self.hosts = hosts or []
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
        if not self.hosts:
            self.update(table)
            return
        now = time.time()
        self.update(Group(table, Text("hosts", style="bold"),
                          *(host_line(h, now) for h in self.hosts)))
