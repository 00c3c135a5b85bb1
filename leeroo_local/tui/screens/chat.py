"""The main screen: the conversation, the prompt, and the side panels (route, latency, energy,
pool). It coordinates: a thread worker runs each request through the service and posts what
happens back as messages; the handlers update the widgets."""

from __future__ import annotations

import threading
import time

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Input, Markdown
from textual.widgets.markdown import MarkdownStream

from ...errors import LeerooError
from ...runtime.service import Progress, Result, TextEvent
from .. import format as fmt
from ..state import AUTO, turn_result
from ..widgets.chat_message import ChatMessage
from ..widgets.conversation_view import ConversationView
from ..widgets.energy_panel import EnergyPanel
from ..widgets.latency_panel import LatencyPanel
from ..widgets.load_progress import LoadProgress
from ..widgets.pool_panel import PoolPanel
from ..widgets.route_panel import RoutePanel
from .expert_picker import ExpertPicker
from .history import HistoryScreen


class ChatScreen(Screen):
    """Ask, watch the answer stream in, and see which expert answered and what it cost."""

    AUTO_FOCUS = "#prompt"
    BINDINGS = [
        Binding("ctrl+n", "new_conversation", "New chat"),
        Binding("ctrl+r", "pick_expert", "Route: expert/auto"),
        Binding("ctrl+o", "history", "History"),
        Binding("escape", "stop", "Stop"),
    ]

    # Messages from the request worker. Each carries the number of the request it belongs to,
    # so that what a stopped or abandoned request still sends is ignored.
    class Advanced(Message):
        """The request reached a stage: routed, loading (cold expert) or generating."""

        def __init__(self, request: int, progress: Progress) -> None:
            super().__init__()
            self.request = request
            self.progress = progress

    class Chunk(Message):
        """A piece of the answer."""

        def __init__(self, request: int, text: str) -> None:
            super().__init__()
            self.request = request
            self.text = text

    class Finished(Message):
        """The answer is complete, with everything measured about it."""

        def __init__(self, request: int, result: Result) -> None:
            super().__init__()
            self.request = request
            self.result = result

    class Failed(Message):
        """The request failed; `kind` is the error's class name."""

        def __init__(self, request: int, kind: str, message: str) -> None:
            super().__init__()
            self.request = request
            self.kind = kind
            self.message = message

    class PoolStatus(Message):
        """A fresh Service.status(), or the error that prevented reading it."""

        def __init__(self, rows: list[dict], error: str | None = None,
                     hosts: list[dict] | None = None) -> None:
            super().__init__()
            self.rows = rows
            self.error = error
            self.hosts = hosts or []

    class Reopened(Message):
        """A logged conversation's requests, read to be shown again."""

        def __init__(self, conversation: str, rows: list[dict]) -> None:
            super().__init__()
            self.conversation = conversation
            self.rows = rows

    def __init__(self) -> None:
        super().__init__()
        self.busy = False
        self.request = 0
        self._cancel: threading.Event | None = None
        self._prompt = ""
        self._reply: ChatMessage | None = None
        self._stream: MarkdownStream | None = None
        self._pool_error: str | None = None
        self._generating_at = 0.0

    # -- layout --------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        service = self.app.service
        experts = service.universe.ids()
        costs = {}
        for expert in experts:
            arch = service.catalog.get(expert).arch
            costs[expert] = arch.active_params_b if arch else None
        with Horizontal(id="main"):
            with Vertical(id="chat"):
                yield ConversationView(id="conversation")
                yield LoadProgress(id="load")
                yield Input(placeholder="Ask the orchestra…  (enter sends)", id="prompt")
            with VerticalScroll(id="side"):
                yield RoutePanel(experts, costs, id="route")
                yield LatencyPanel(id="latency")
                yield EnergyPanel(id="energy")
                yield PoolPanel(id="pool")
        yield Footer()

    def on_mount(self) -> None:
        self.show_mode()
        self.refresh_pool()
        if self.app.pool_refresh_s:
            self.set_interval(self.app.pool_refresh_s, self.refresh_pool)

    def on_unmount(self) -> None:
        if self._cancel is not None:
            self._cancel.set()

    def show_mode(self) -> None:
        expert = self.app.state.expert
        self.query_one("#prompt", Input).border_title = (
            "auto: the policy picks the expert" if expert == AUTO else f"forced: {expert}  (ctrl+r)")

    # -- asking --------------------------------------------------------------------------------
    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        prompt = event.value.strip()
        if not prompt:
            return
        if self.busy:
            self.notify("Still answering: esc stops it.", severity="warning")
            return
        event.input.clear()
        self.ask(prompt)

    def ask(self, prompt: str) -> None:
        """Show the prompt and start answering it in a worker thread."""
        state = self.app.state
        view = self.query_one(ConversationView)
        view.add_user(prompt)
        self._reply = view.add_reply()
        self._stream = None
        self._prompt = prompt
        self.busy = True
        self.request += 1
        self._cancel = threading.Event()
        self._generate(self.request, state.request(prompt), state.expert, state.conversation,
                       self._cancel)

    @work(thread=True, exclusive=True, group="chat")
    def _generate(self, request: int, messages: list[dict], expert: str, conversation: str,
                  cancel: threading.Event) -> None:
        """Run one request through the service (blocking), posting each event back."""
        try:
            for event in self.app.service.chat(messages, expert, self.app.sampling,
                                               cancel=cancel, conversation=conversation):
                if isinstance(event, Progress):
                    self.post_message(self.Advanced(request, event))
                elif isinstance(event, TextEvent):
                    self.post_message(self.Chunk(request, event.text))
                else:
                    self.post_message(self.Finished(request, event))
        except LeerooError as exc:
            self.post_message(self.Failed(request, type(exc).__name__, str(exc)))
        except Exception as exc:  # a bug must not take the chat down: show it, keep going
            self.post_message(self.Failed(request, type(exc).__name__, str(exc) or repr(exc)))

    def on_chat_screen_advanced(self, event: Advanced) -> None:
        if event.request != self.request:
            return
        p = event.progress
        if p.stage == "routed":
            self.query_one(RoutePanel).show(p.route)
            self.query_one(LatencyPanel).routed(p.route)
            if self._reply is not None:
                self._reply.name_expert(p.route.expert, p.route.quant)
        elif p.stage == "loading":
            self.query_one(LoadProgress).start(p.route.expert, p.route.quant)
            self.refresh_pool()
        else:
            self._generating_at = time.monotonic()
            self.query_one(LoadProgress).stop()
            self.query_one(LatencyPanel).loaded(p.load_s)
            self.refresh_pool()

    async def on_chat_screen_chunk(self, event: Chunk) -> None:
        if event.request != self.request or self._reply is None:
            return
        if self._stream is None:
            self._stream = Markdown.get_stream(self._reply)
            self.query_one(LatencyPanel).first_token(time.monotonic() - self._generating_at)
        await self._stream.write(event.text)

    async def on_chat_screen_finished(self, event: Finished) -> None:
        if event.request != self.request:
            return
        result = event.result
        await self._end_stream()
        if self._reply is not None:
            if not result.answer.strip():
                await self._reply.update("*(no answer)*")
            self._reply.caption(result)
        self.show_result(result)
        self.app.state.add_turn(self._prompt, result.answer)
        self._done()

    async def on_chat_screen_failed(self, event: Failed) -> None:
        if event.request != self.request:
            return
        await self._end_stream()
        self.query_one(LoadProgress).stop()
        if self._reply is not None and not self._reply.source:
            await self._reply.remove()
        self.query_one(ConversationView).add_error(event.kind, event.message)
        self.notify(event.message, title=event.kind, severity="error")
        self._done()

    def show_result(self, result: Result) -> None:
        """Fill the route, latency and energy panels from a finished request."""
        self.query_one(RoutePanel).show(result.route)
        self.query_one(LatencyPanel).show(result)
        self.query_one(EnergyPanel).show(result)

    async def _end_stream(self) -> None:
        if self._stream is not None:
            await self._stream.stop()
            self._stream = None

    def _done(self) -> None:
        self.busy = False
        self._cancel = None
        self._reply = None
        self.refresh_pool()

    def _abandon(self) -> None:
        """Stop the request in flight and ignore whatever it still sends."""
        if self._cancel is not None:
            self._cancel.set()
        self.request += 1
        self._stream = None
        self.query_one(LoadProgress).stop()
        self._done()

    # -- actions -------------------------------------------------------------------------------
    def action_stop(self) -> None:
        """Stop the answer being written (the partial answer is kept)."""
        if self.busy and self._cancel is not None:
            self._cancel.set()

    async def action_new_conversation(self) -> None:
        if self.busy:
            self._abandon()
        self.app.state.start_new()
        await self.query_one(ConversationView).clear()
        self.clear_panels()
        self.notify("New conversation.")

    def action_pick_expert(self) -> None:
        service = self.app.service
        experts = []
        for m in service.universe.members:
            e = service.catalog.get(m.expert)
            cost = fmt.params(e.arch.active_params_b) if e.arch else "remote"
            experts.append((m.expert, f"{m.quant}, {cost}"))
        self.app.push_screen(ExpertPicker(experts, self.app.state.expert), self._picked)

    def _picked(self, expert: str | None) -> None:
        if expert is None:
            return
        self.app.state.expert = expert
        self.show_mode()
        self.notify("Automatic routing." if expert == AUTO else f"Next messages go to {expert}.")

    def action_history(self) -> None:
        self.app.push_screen(HistoryScreen(self.app.state.conversation), self._reopen)

    def _reopen(self, conversation: str | None) -> None:
        if conversation is None:
            return
        if self.busy:
            self._abandon()
        self._read_turns(conversation)

    @work(thread=True, exclusive=True, group="history")
    def _read_turns(self, conversation: str) -> None:
        self.post_message(self.Reopened(conversation, self.app.service.log.turns(conversation)))

    async def on_chat_screen_reopened(self, event: Reopened) -> None:
        self.app.state.reopen(event.conversation, event.rows)
        view = self.query_one(ConversationView)
        await view.clear()
        self.clear_panels()
        for row in event.rows:
            result = turn_result(row)
            if result is not None:
                self.show_answered(row["prompt"] or "", result)
            else:
                view.add_user(row["prompt"] or "")
                kind, _, message = (row.get("error") or "no answer").partition(": ")
                view.add_error(kind, message or kind)
        self.notify(f"Reopened a conversation of {len(event.rows)} requests.")

    def show_answered(self, prompt: str, result: Result) -> None:
        """Show an answered turn, and its route, latency and energy in the panels."""
        view = self.query_one(ConversationView)
        view.add_user(prompt)
        view.add_reply(result.answer or "*(no answer)*").caption(result)
        self.show_result(result)

    def clear_panels(self) -> None:
        self.query_one(RoutePanel).show(None)
        self.query_one(LatencyPanel).reset()
        self.query_one(EnergyPanel).show(None)

    # -- pool ----------------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="pool")
    def refresh_pool(self) -> None:
        """Read Service.status() and the hosts' state off the event loop (it may read a GGUF
        header, or probe a host for a second)."""
        try:
            rows = self.app.service.status()
            hosts = self.app.service.hosts()
        except LeerooError as exc:
            self.post_message(self.PoolStatus([], f"{type(exc).__name__}: {exc}"))
            return
        self.post_message(self.PoolStatus(rows, hosts=hosts))

    def on_chat_screen_pool_status(self, event: PoolStatus) -> None:
        if event.error:
            if event.error != self._pool_error:  # once, not at every refresh
                self.notify(event.error, title="pool", severity="error")
            self._pool_error = event.error
            return
        self._pool_error = None
        self.query_one(PoolPanel).show(event.rows, event.hosts)
