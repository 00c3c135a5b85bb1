"""Browse earlier conversations from the request log and reopen one."""

from __future__ import annotations

from datetime import datetime

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Footer, Label, OptionList
from textual.widgets.option_list import Option

from .. import format as fmt


def when(iso: str | None) -> str:
    """A logged UTC time as local 'YYYY-MM-DD HH:MM'."""
    if not iso:
        return ""
    return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M")


class HistoryScreen(ModalScreen[str | None]):
    """The log's conversations, newest first; dismisses with the one picked (None: none)."""

    BINDINGS = [Binding("escape", "dismiss_none", "Close")]

    class Loaded(Message):
        """The conversations read from the log (by a thread worker)."""

        def __init__(self, conversations: list[dict]) -> None:
            super().__init__()
            self.conversations = conversations

    def __init__(self, current: str | None = None) -> None:
        super().__init__()
        self.current = current
        self.conversations: list[dict] | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="history"):
            yield Label("Earlier conversations", id="history-title")
            yield Label("enter reopens one to continue it · esc closes (● the one on screen)",
                        classes="hint")
            yield OptionList(Option("reading the log…", disabled=True), id="history-options")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()
        self._read()

    @work(thread=True, exclusive=True, group="history")
    def _read(self) -> None:
        self.post_message(self.Loaded(self.app.service.log.conversations()))

    def on_history_screen_loaded(self, event: Loaded) -> None:
        self.conversations = event.conversations
        options = self.query_one(OptionList)
        options.clear_options()
        if not event.conversations:
            options.add_option(Option("no conversations in the log yet", disabled=True))
            return
        for c in event.conversations:
            mark = "● " if c["conversation"] == self.current else "  "
            turns = f"{c['turns']} turn" + ("s" if c["turns"] != 1 else "")
            options.add_option(Option(
                f"{mark}{when(c['last_at'])}  {turns:>8}  {fmt.shorten(c['first_prompt'] or '', 60)}",
                id=c["conversation"]))
        options.highlighted = 0

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
