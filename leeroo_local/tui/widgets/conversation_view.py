"""The conversation pane: prompts, streamed answers and errors, following the newest line."""

from __future__ import annotations

from textual.containers import VerticalScroll

from .chat_message import ChatMessage
from .error_line import ErrorLine


class ConversationView(VerticalScroll):
    """A scrolling column of ChatMessage and ErrorLine widgets, anchored to the bottom while
    an answer streams in."""

    def on_mount(self) -> None:
        self.anchor()

    def add_user(self, text: str) -> ChatMessage:
        message = ChatMessage(text, role="user")
        self.mount(message)
        return message

    def add_reply(self, text: str = "") -> ChatMessage:
        message = ChatMessage(text, role="assistant")
        self.mount(message)
        return message

    def add_error(self, kind: str, message: str) -> ErrorLine:
        line = ErrorLine(kind, message)
        self.mount(line)
        return line

    async def clear(self) -> None:
        await self.remove_children()
