"""One turn of the conversation: the user's prompt or an expert's answer, rendered as Markdown."""

from __future__ import annotations

from textual.widgets import Markdown

from ...runtime.service import Result
from .. import format as fmt


class ChatMessage(Markdown):
    """A prompt (`user`) or an answer (`assistant`); an answer's border names the expert that
    wrote it and its caption says what it cost."""

    def __init__(self, text: str = "", *, role: str, title: str = "") -> None:
        super().__init__(text, classes=role)
        self.role = role
        self.border_title = title or ("you" if role == "user" else "…")

    def name_expert(self, expert: str, quant: str) -> None:
        self.border_title = f"{expert} · {quant}"

    def caption(self, result: Result) -> None:
        """Name the expert and summarise the answer's latency and energy under it."""
        self.name_expert(result.expert, result.quant)
        stopped = " · stopped" if result.finish_reason == "cancelled" else ""
        self.border_subtitle = (
            f"{fmt.seconds(result.timings.total_s)} · {fmt.rate(result.timings.tokens_per_s)} · "
            f"{fmt.energy(result.energy.joules)} {result.energy.method}{stopped}")
