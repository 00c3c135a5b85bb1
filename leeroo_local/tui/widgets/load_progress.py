"""Shown while a cold expert is made present and loaded: which one, and for how long so far."""

from __future__ import annotations

import time

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Label, ProgressBar


class LoadProgress(Horizontal):
    """An indeterminate bar with the expert's name and the seconds elapsed (the service reports
    the stage of a load, not a fraction of it, so the bar does not pretend to know one)."""

    def compose(self) -> ComposeResult:
        yield Label(id="load-label")
        yield ProgressBar(total=None, show_percentage=False, show_eta=False)

    def on_mount(self) -> None:
        self.display = False
        self._what = ""
        self._started = 0.0
        self._timer = self.set_interval(0.2, self._tick, pause=True)

    def start(self, expert: str, quant: str) -> None:
        self._what = f"loading {expert} · {quant}"
        self._started = time.monotonic()
        self._tick()
        self.display = True
        self._timer.resume()

    def stop(self) -> None:
        self._timer.pause()
        self.display = False

    def _tick(self) -> None:
        self.query_one("#load-label", Label).update(
            f"{self._what}  {time.monotonic() - self._started:.1f} s ")
