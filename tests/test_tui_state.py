"""The chat's plain parts: number formatting, score bars, conversation state, and reading
conversations back from the request log."""

from __future__ import annotations

import json

from leeroo_local.runtime.service import Energy, Result, Route, Timings
from leeroo_local.store.requests import RequestLog
from leeroo_local.tui import format as fmt
from leeroo_local.tui.state import ChatState, turn_result


def test_durations_energy_memory_and_keep_alive_read_naturally():
    assert [fmt.seconds(s) for s in (0.0031, 0.42, 12.34, None)] == ["3 ms", "0.42 s", "12.3 s", "—"]
    assert [fmt.energy(j) for j in (0.844, 18.64, 312.2, 4500.0)] == ["0.84 J", "18.6 J", "312 J", "1.25 Wh"]
    assert fmt.rate(0.0) == "—" and fmt.rate(41.26) == "41.3 tok/s"
    assert fmt.keep_alive(None) == "—" and fmt.keep_alive(45.4) == "45s" and fmt.keep_alive(245) == "4m05s"
    assert fmt.memory(None) == "—" and fmt.memory(5 * 1024 * 1024) == "5.00 MiB"
    assert fmt.params(0.268) == "268M" and fmt.params(7.24) == "7.24B" and fmt.params(None) == "—"
    assert fmt.shorten("a  b\nc", 10) == "a b c" and fmt.shorten("x" * 20, 8) == "x" * 7 + "…"


def test_bars_fill_in_eighths_and_scores_of_any_sign_compare():
    assert fmt.bar(1.0, 4) == "████" and fmt.bar(0.0, 4) == "    " and fmt.bar(2.0, 4) == "████"
    assert fmt.bar(0.5625, 4) == "██▎ "  # 18 eighths of 32
    assert all(len(fmt.bar(f / 10, 7)) == 7 for f in range(11))
    assert fmt.bar_fractions({"a": 0.2, "b": 0.9}) == {"a": 0.2, "b": 0.9}  # probabilities as is
    assert fmt.bar_fractions({"a": -2.0, "b": 0.0, "c": 2.0}) == {"a": 0.0, "b": 0.5, "c": 1.0}
    assert fmt.bar_fractions({"a": 3.0, "b": 3.0}) == {"a": 1.0, "b": 1.0}
    assert fmt.bar_fractions({}) == {}


def test_only_answered_turns_are_sent_as_context():
    state = ChatState()
    first = state.conversation
    assert state.request("hi") == [{"role": "user", "content": "hi"}]
    state.add_turn("hi", "hello")
    assert [m["role"] for m in state.request("more")] == ["user", "assistant", "user"]
    state.expert = "tiny-2"
    state.start_new()
    assert state.messages == [] and state.conversation != first and state.expert == "tiny-2"


def _result(answer="an answer") -> Result:
    route = Route(expert="tiny-2", quant="F32", scores={"tiny-1": 0.3, "tiny-2": 0.7},
                  reason="best", route_s=0.002)
    return Result(answer=answer, expert="tiny-2", quant="F32", route=route,
                  timings=Timings(route_s=0.002, load_s=0.5, ttft_s=0.05, total_s=0.9, tokens_per_s=30.0),
                  tokens={"prompt": 5, "completion": 9},
                  energy=Energy(joules=2.5, method="estimated", source="cpu time"), finish_reason="stop")


def test_a_logged_conversation_reopens_with_its_context_and_measurements(tmp_path):
    log = RequestLog(tmp_path / "log.db")
    sent1 = [{"role": "user", "content": "zebra first"}]
    log.record(kind="chat", prompt="zebra first", messages=sent1, result=_result("one"), conversation="c")
    log.record(kind="chat", prompt="apple second", messages=[*sent1, {"role": "assistant", "content": "one"},
               {"role": "user", "content": "apple second"}], result=_result("two"), conversation="c")
    log.record(kind="chat", prompt="too long", error="ContextOverflow: prompt is 600 tokens",
               route=_result().route, conversation="c")
    log.record(kind="chat", prompt="other", result=_result(), conversation="d")
    log.record(kind="chat", prompt="no conversation", result=_result())

    convs = log.conversations()
    assert [c["conversation"] for c in convs] == ["d", "c"]  # the latest request first
    assert convs[1]["first_prompt"] == "zebra first" and convs[1]["turns"] == 3  # first, not min()
    rows = log.turns("c")
    assert [r["prompt"] for r in rows] == ["zebra first", "apple second", "too long"]

    state = ChatState()
    state.reopen("c", rows)
    assert state.conversation == "c"
    assert state.messages == [{"role": "user", "content": "zebra first"},
                              {"role": "assistant", "content": "one"},
                              {"role": "user", "content": "apple second"},
                              {"role": "assistant", "content": "two"}]
    back = turn_result(rows[1])
    assert back.answer == "two" and back.route.scores == {"tiny-1": 0.3, "tiny-2": 0.7}
    assert back.timings.load_s == 0.5 and back.tokens == {"prompt": 5, "completion": 9}
    assert back.energy.joules == 2.5 and back.energy.method == "estimated"
    assert turn_result(rows[2]) is None
    state.reopen("none", [])
    assert state.messages == [] and json.loads(rows[0]["messages"]) == sent1
