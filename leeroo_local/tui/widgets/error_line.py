"""An error in the conversation, in words, with what the user can do about it."""

from __future__ import annotations

from textual.widgets import Static

# What to do next, by error class name (LeerooError subclasses); others get no hint.
HINTS = {
    "ContextOverflow": "shorten the prompt, or start a new conversation (ctrl+n)",
    "BudgetTooSmall": "pick a smaller expert (ctrl+r) or raise ram_budget in config.toml",
    "ExpertCrashed": "the expert is restarted with the next message",
    "CorruptModel": "pick another expert (ctrl+r); the file needs to be pulled again",
    "NotAvailableOffline": "pull the expert while online, or pick another (ctrl+r)",
    "UnknownExpert": "pick an expert of the universe (ctrl+r)",
}


class ErrorLine(Static):
    """A failed request: the error's kind and message, and a hint when there is one."""

    def __init__(self, kind: str, message: str) -> None:
        hint = HINTS.get(kind)
        text = f"✖ {kind}: {message}" + (f"\n  → {hint}" if hint else "")
        super().__init__(text, markup=False, classes="error")
        self.kind = kind
        self.message = message
