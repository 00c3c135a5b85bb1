"""Pick the expert for the next messages, or go back to automatic routing."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Label, OptionList
from textual.widgets.option_list import Option

from ..state import AUTO


class ExpertPicker(ModalScreen[str | None]):
    """A list of `auto` and the universe's experts; dismisses with the chosen id (None: kept)."""

    BINDINGS = [Binding("escape", "dismiss_none", "Cancel")]

    def __init__(self, experts: list[tuple[str, str]], current: str) -> None:
        """`experts` are (id, description) pairs; `current` is the choice in force."""
        super().__init__()
        self.experts = experts
        self.current = current

    def compose(self) -> ComposeResult:
        choices = [(AUTO, "the policy routes each message"), *self.experts]
        options = [Option(f"{'● ' if key == self.current else '  '}{key}  ({about})", id=key)
                   for key, about in choices]
        with Vertical(id="picker"):
            yield Label("Expert for the next messages", id="picker-title")
            yield Label("enter picks · esc keeps the current choice (●)", classes="hint")
            yield OptionList(*options, id="picker-options")
        yield Footer()

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        ids = [AUTO, *(e for e, _ in self.experts)]
        options.highlighted = ids.index(self.current) if self.current in ids else 0
        options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
