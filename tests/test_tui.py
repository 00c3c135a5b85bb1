"""The chat, driven headless with Textual's Pilot on tiny real llama.cpp experts."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal

import psutil
import pytest
from rich.console import Console

from helpers import install_tiny_universe
from leeroo_local.backends.base import Sampling
from leeroo_local.runtime.service import Service
from leeroo_local.settings import load_settings

pytest.importorskip("textual")

from textual.widgets import Input, OptionList  # noqa: E402

from leeroo_local.tui.app import create_app  # noqa: E402
from leeroo_local.tui.screens.chat import ChatScreen  # noqa: E402
from leeroo_local.tui.screens.expert_picker import ExpertPicker  # noqa: E402
from leeroo_local.tui.screens.history import HistoryScreen  # noqa: E402
from leeroo_local.tui.widgets.chat_message import ChatMessage  # noqa: E402
from leeroo_local.tui.widgets.error_line import ErrorLine  # noqa: E402
from leeroo_local.tui.widgets.latency_panel import LatencyPanel  # noqa: E402
from leeroo_local.tui.widgets.route_panel import RoutePanel  # noqa: E402
from leeroo_local.tui.widgets.load_progress import LoadProgress  # noqa: E402

DASH = "—"


@pytest.fixture
def service(tiny_dir):
    install_tiny_universe(tiny_dir, n_ctx=256)
    svc = Service(load_settings(n_threads=1, ram_budget="64MB", keep_alive_s=60), client="chat")
    yield svc
    svc.close()


def make_app(service, max_tokens: int = 8, **kw):
    return create_app(service, sampling=Sampling(max_tokens=max_tokens, seed=1),
                      pool_refresh_s=None, **kw)


def drive(app, scenario, size=(120, 40)) -> None:
    """Run `scenario(pilot)` against the app, headless."""
    async def main():
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            await scenario(pilot)
    asyncio.run(main())


def plain(renderable, width: int = 44) -> str:
    """What a panel shows, as text."""
    console = Console(width=width, file=io.StringIO(), record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def chat_screen(app) -> ChatScreen:
    return next(s for s in app.screen_stack if isinstance(s, ChatScreen))


async def until(pilot, condition, what: str, tries: int = 600) -> None:
    """Let the app run until `condition()` holds (workers report through messages)."""
    for _ in range(tries):
        if condition():
            return
        await pilot.pause(0.02)
    raise AssertionError(f"never happened: {what}")


async def settle(pilot) -> None:
    """Wait for the request in flight to finish and for its messages to be handled."""
    await pilot.app.workers.wait_for_complete()
    await until(pilot, lambda: not chat_screen(pilot.app).busy, "the answer finished")
    await pilot.pause()


async def send(pilot, text: str, typed: bool = False) -> None:
    screen = chat_screen(pilot.app)
    if typed:
        await pilot.press(*text)
    else:  # a long prompt set at once: typing 600 keys one by one is slow
        screen.query_one("#prompt", Input).value = text
    await pilot.press("enter")
    await settle(pilot)


def messages(app) -> list:
    return list(chat_screen(app).query("ChatMessage, ErrorLine"))


async def pick(pilot, option_id: str) -> None:
    """Choose an option of the modal screen on top by moving the highlight to it."""
    options = pilot.app.screen.query_one(OptionList)
    await until(pilot, lambda: any(o.id == option_id for o in options.options), f"option {option_id}")
    target = next(i for i, o in enumerate(options.options) if o.id == option_id)
    while options.highlighted != target:
        await pilot.press("down" if (options.highlighted or 0) < target else "up")
    await pilot.press("enter")
    await pilot.pause()


def test_a_prompt_streams_an_answer_and_the_panels_show_route_latency_energy(service):
    async def scenario(pilot):
        app = pilot.app
        await send(pilot, "hello", typed=True)
        row = service.log.recent(1)[0]
        assert row["error"] is None and row["conversation"] == app.state.conversation
        assert row["client"] == "chat"
        user, reply = messages(app)
        assert user.source == "hello" and reply.source == row["response"]
        assert reply.border_title == f"{row['expert']} · {row['quant']}"
        assert row["energy_method"] in reply.border_subtitle

        screen = chat_screen(app)
        route = plain(screen.query_one("#route").content)
        assert f"▶ {row['expert']}" in route and row["route_reason"] in " ".join(route.split())
        assert all(e in route for e in service.universe.ids())  # every expert has a row
        latency = screen.query_one(LatencyPanel).values
        for name in ("route", "load", "first token", "total"):
            assert latency[name] not in (DASH, "…"), name
        assert latency["tokens"] == f"{row['prompt_tokens']} in · {row['completion_tokens']} out"
        energy = plain(screen.query_one("#energy").content)
        assert row["energy_method"] in energy and "J" in energy
        pool = plain(screen.query_one("#pool").content, width=60)
        line = next(ln for ln in pool.splitlines() if row["expert"] in ln)
        assert "loaded" in line

        await send(pilot, "and then?", typed=True)  # a second turn carries the first as context
        second = service.log.recent(1)[0]
        assert second["conversation"] == row["conversation"]
        sent = json.loads(second["messages"])
        assert [m["role"] for m in sent] == ["user", "assistant", "user"]
        assert sent[0]["content"] == "hello" and sent[1]["content"] == row["response"]
        assert screen.query_one(LatencyPanel).values["load"] == "warm"
        assert len(messages(app)) == 4

    drive(make_app(service), scenario)


def test_force_an_expert_then_go_back_to_auto(service):
    async def scenario(pilot):
        app = pilot.app
        await pilot.press("ctrl+r")
        assert isinstance(app.screen, ExpertPicker)
        await pick(pilot, "tiny-3")
        assert isinstance(app.screen, ChatScreen) and app.state.expert == "tiny-3"
        assert "tiny-3" in app.screen.query_one("#prompt", Input).border_title
        await send(pilot, "forced")
        row = service.log.recent(1)[0]
        assert row["expert"] == "tiny-3" and row["route_reason"] == "named by the request"
        assert "▶ tiny-3" in plain(app.screen.query_one("#route").content)

        await send(pilot, "still forced")  # the choice holds until changed
        assert service.log.recent(1)[0]["expert"] == "tiny-3"

        await pilot.press("ctrl+r")
        await pick(pilot, "auto")
        assert app.state.expert == "auto"
        await send(pilot, "automatic")
        row = service.log.recent(1)[0]
        assert row["route_reason"] != "named by the request"
        assert row["expert"] == service.route("automatic").expert

    drive(make_app(service), scenario)


def test_new_conversation_and_reopening_one_from_the_history(service):
    async def scenario(pilot):
        app = pilot.app
        await send(pilot, "first question")
        first = app.state.conversation
        first_answer = service.log.recent(1)[0]["response"]
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert app.state.conversation != first and app.state.messages == []
        assert messages(app) == []
        await send(pilot, "second question")
        second = app.state.conversation

        await pilot.press("ctrl+o")
        assert isinstance(app.screen, HistoryScreen)
        options = app.screen.query_one(OptionList)
        await until(pilot, lambda: app.screen.conversations is not None, "the log was read")
        assert [o.id for o in options.options] == [second, first]  # newest first
        assert "second question" in str(options.get_option_at_index(0).prompt)
        await pick(pilot, first)
        await until(pilot, lambda: app.state.conversation == first, "the conversation reopened")
        await pilot.pause()
        user, reply = messages(app)
        assert user.source == "first question" and reply.source == first_answer
        assert reply.border_title.startswith("tiny-")
        assert app.state.messages == [{"role": "user", "content": "first question"},
                                      {"role": "assistant", "content": first_answer}]

        await send(pilot, "follow-up")  # the reopened conversation continues in the log
        row = service.log.recent(1)[0]
        assert row["conversation"] == first
        assert json.loads(row["messages"])[0]["content"] == "first question"

        await pilot.press("ctrl+o")
        await until(pilot, lambda: app.screen.conversations is not None, "the log was read")
        await pilot.press("escape")
        assert isinstance(app.screen, ChatScreen) and app.state.conversation == first

    drive(make_app(service), scenario)


def test_errors_appear_in_the_conversation_and_the_chat_keeps_working(service):
    async def scenario(pilot):
        app = pilot.app
        await send(pilot, "y" * 600)  # the tiny experts hold 256 tokens
        error = messages(app)[-1]
        assert isinstance(error, ErrorLine) and error.kind == "ContextOverflow"
        assert "256" in error.message
        assert any(n.title == "ContextOverflow" for n in app._notifications)
        assert app.state.messages == []  # the failed prompt is not sent again as context

        await send(pilot, "hello")
        assert isinstance(messages(app)[-1], ChatMessage)
        assert [m["content"] for m in app.state.messages] == ["hello", messages(app)[-1].source]

        # The expert's worker dies while it answers: freeze it so the request is surely in
        # flight, then kill it.
        pid = service.pool().worker_pids()[0]
        os.kill(pid, signal.SIGSTOP)
        try:
            screen = chat_screen(app)
            screen.query_one("#prompt", Input).value = "are you there?"
            await pilot.press("enter")
            await until(pilot, lambda: screen.query_one(LatencyPanel).values["load"] == "warm",
                        "the request reached the worker")
        finally:
            os.kill(pid, signal.SIGKILL)
        await settle(pilot)
        # It died before its first token: the next member answered, and the route says so.
        assert isinstance(messages(app)[-1], ChatMessage)
        row = service.log.recent(1)[0]
        assert json.loads(row["fallback"])[0]["error"].startswith("ExpertCrashed")
        assert "fell back from" in plain(screen.query_one(RoutePanel).render_route(), 80)

        await send(pilot, "again")  # the expert is restarted for the next message
        assert isinstance(messages(app)[-1], ChatMessage)

    drive(make_app(service), scenario)


def test_a_cold_load_shows_progress_and_stop_ends_the_answer(service):
    async def scenario(pilot):
        app = pilot.app
        screen = chat_screen(app)
        load = screen.query_one(LoadProgress)
        assert not load.display
        spare = service.pool().ready_spare()  # freeze the spare worker, so the load waits for us
        workers = [p for p in psutil.Process().children()
                   if "leeroo_local.backends.worker" in p.cmdline()]
        assert spare in [p.pid for p in workers]
        for p in workers:
            p.send_signal(signal.SIGSTOP)
        try:
            screen.query_one("#prompt", Input).value = "tell me a long story"
            await pilot.press("enter")
            await until(pilot, lambda: load.display, "the load progress shows")
            assert "loading tiny-1" in str(load.query_one("#load-label").content)
            await pilot.press("escape")  # stop before the first token
        finally:
            for p in workers:
                p.send_signal(signal.SIGCONT)
        await settle(pilot)
        assert not load.display
        reply = messages(app)[-1]
        assert "stopped" in reply.border_subtitle and reply.source == "*(no answer)*"
        row = service.log.recent(1)[0]
        assert row["finish_reason"] == "cancelled" and row["completion_tokens"] == 0

        await send(pilot, "hello")  # the stopped worker answers the next message
        assert service.log.recent(1)[0]["finish_reason"] != "cancelled"

    drive(make_app(service), scenario)


def test_no_expert_fits_is_an_error_line(tiny_dir):
    install_tiny_universe(tiny_dir, n_ctx=256)
    svc = Service(load_settings(n_threads=1, ram_budget="1MB", keep_alive_s=0), client="chat")
    try:
        async def scenario(pilot):
            await send(pilot, "hello")
            error = messages(pilot.app)[-1]
            assert isinstance(error, ErrorLine) and error.kind == "BudgetTooSmall"
            assert "budget" in error.message and "ctrl+r" in str(error.content)

        drive(make_app(svc), scenario)
    finally:
        svc.close()
