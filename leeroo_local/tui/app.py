"""The chat application and its factory, shared by `leeroo-local chat` and the tests."""

from __future__ import annotations


from textual.app import App

from ..backends.base import Sampling
from ..runtime.service import Service
from .screens.chat import ChatScreen
from .state import AUTO, ChatState


class ChatApp(App):
    """A terminal chat over the service. Its state (the conversation, the routing choice) lives
    here, on the app; the service is built and closed by whoever made the app."""

    CSS_PATH = "chat.tcss"
    TITLE = "leeroo-local chat"

    def __init__(self, service: Service, sampling: Sampling, state: ChatState,
                 pool_refresh_s: float | None) -> None:
        super().__init__()
        self.service = service
        self.sampling = sampling
        self.state = state
        self.pool_refresh_s = pool_refresh_s

    def get_default_screen(self) -> ChatScreen:
        return ChatScreen()


def create_app(service: Service, *, sampling: Sampling | None = None, expert: str = AUTO,
               pool_refresh_s: float | None = 1.0) -> ChatApp:
    """The chat over `service`. `expert` is the routing choice to start with (auto, or an id
    to force); `pool_refresh_s` is how often the pool panel is re-read (None: only after each
    request)."""
    return ChatApp(service, sampling or Sampling(), ChatState(expert=expert), pool_refresh_s)
