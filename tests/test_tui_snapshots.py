"""Snapshots of the chat's screens with fixed data: the widgets are given fixed routes and
results (no model runs), so the pictures are the same on every machine.

Update them after a deliberate change of the layout with `pytest --snapshot-update`."""

from __future__ import annotations

import pytest

from helpers import install_tiny_universe
from leeroo_local.errors import ContextOverflow
from leeroo_local.runtime.service import Energy, Result, Route, Service, Timings
from leeroo_local.settings import load_settings

pytest.importorskip("textual")
pytest.importorskip("pytest_textual_snapshot")

from leeroo_local.tui.app import create_app  # noqa: E402
from leeroo_local.tui.screens.chat import ChatScreen  # noqa: E402
from leeroo_local.tui.widgets.conversation_view import ConversationView  # noqa: E402

SIZE = (120, 34)
ANSWER = """The three primary colours of light are **red**, **green** and **blue**.

- mixed in pairs they give cyan, magenta and yellow
- all three together give white"""
POOL = [
    {"expert": "tiny-1", "quant": "F32", "remote": False, "loaded": False, "loading": False,
     "busy": False, "queued": 0, "keep_alive_s": None, "memory_bytes": 5_247_116},
    {"expert": "tiny-2", "quant": "F32", "remote": False, "loaded": True, "loading": False,
     "busy": False, "queued": 0, "keep_alive_s": 287.4, "memory_bytes": 5_247_116},
    {"expert": "tiny-3", "quant": "F32", "remote": False, "loaded": True, "loading": False,
     "busy": True, "queued": 1, "keep_alive_s": None, "memory_bytes": 5_247_116},
]


def result(route: Route) -> Result:
    return Result(
        answer=ANSWER, expert=route.expert, quant=route.quant, route=route,
        timings=Timings(route_s=0.0031, load_s=0.84, ttft_s=0.092, total_s=1.71,
                        tokens_per_s=41.3),
        tokens={"prompt": 14, "completion": 36},
        energy=Energy(joules=18.6, method="measured", source="RAPL package-0 (intel-rapl:0)"),
        finish_reason="stop",
    )


@pytest.fixture
def app(tiny_dir):
    install_tiny_universe(tiny_dir, n_ctx=256)
    service = Service(load_settings(n_threads=1, ram_budget="64MB", keep_alive_s=300))
    yield create_app(service, pool_refresh_s=None)
    service.close()


async def settled(pilot) -> ChatScreen:
    """The chat screen once its first pool read is in, so the fixed rows are not overwritten."""
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    screen = pilot.app.screen
    for widget in screen.query("Input, TextArea"):
        widget.cursor_blink = False  # a blinking cursor makes the picture depend on timing
    screen.post_message(ChatScreen.PoolStatus(POOL))
    await pilot.pause()
    return screen


def test_main_screen_after_a_routed_answer(app, snap_compare):
    route = Route(expert="tiny-2", quant="F32", scores={"tiny-1": 0.42, "tiny-2": 0.81, "tiny-3": 0.17},
                  reason="highest predicted quality per unit of cost", route_s=0.0031)

    async def run_before(pilot):
        screen = await settled(pilot)
        screen.show_answered("What are the three primary colours?", result(route))
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_main_screen_with_a_forced_expert_and_an_error(app, snap_compare):
    route = Route(expert="tiny-3", quant="F32", reason="named by the request", route_s=0.0002)

    async def run_before(pilot):
        screen = await settled(pilot)
        app.state.expert = "tiny-3"
        screen.show_mode()
        screen.show_answered("Name a primary colour.", result(route))
        view = screen.query_one(ConversationView)
        view.add_user("y " * 40)
        view.add_error("ContextOverflow", str(ContextOverflow(601, 256)))
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_expert_picker(app, snap_compare):
    async def run_before(pilot):
        await settled(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before, press=["ctrl+r"])
