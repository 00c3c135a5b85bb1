"""The backend-neutral side of tool calls: the real chat templates of Qwen2.5, Llama 3.x and Mistral
(tests/chat_templates) render tools, an assistant's calls and the tools' results; the parser reads
the exact text each family writes, whole or in any pieces; a forced call's prefill and schema
per family; the request's tools and tool_choice checked."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from leeroo_local.errors import TemplateError
from leeroo_local.server.errors import ApiError
from leeroo_local.server.requests import tools as tools_of
from leeroo_local.toolcalls import ToolCallParser, Tools, forced_call, render_chat
from leeroo_local.toolcalls.calls import template_id
from leeroo_local.toolcalls.formats import family

TEMPLATES = Path(__file__).resolve().parent / "chat_templates"
QWEN = (TEMPLATES / "Qwen-Qwen2.5-7B-Instruct.jinja").read_text(encoding="utf-8")
LLAMA = (TEMPLATES / "meta-llama-Llama-3.1-8B-Instruct.jinja").read_text(encoding="utf-8")
MISTRAL = (TEMPLATES / "mistralai-Mistral-7B-Instruct-v0.3.jinja").read_text(encoding="utf-8")
NEMO = (TEMPLATES / "mistralai-Mistral-Nemo-Instruct-2407.jinja").read_text(encoding="utf-8")
PARAMS = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Forecast.",
                                            "parameters": PARAMS}}
CLOCK = {"type": "function", "function": {"name": "now", "parameters": {"type": "object"}}}
HISTORY = [
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": "", "tool_calls": [{
        "id": "call_0123456789abcdef", "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
    {"role": "tool", "tool_call_id": "call_0123456789abcdef", "content": "Sunny, 21 C"},
]


def events(text: str, step: int, names=("get_weather", "now"), parallel=True):
    parser = ToolCallParser(list(names), parallel)
    out = []
    for i in range(0, len(text), step):
        out += parser.feed(text[i:i + step])
    out += parser.finish()
    return parser, out


def joined(out) -> tuple[str, list[tuple[str, str]]]:
    """(the content, [(name, arguments)]) the deltas add up to."""
    calls: dict[int, list[str]] = {}
    for e in out:
        if not isinstance(e, str):
            entry = calls.setdefault(e.index, ["", ""])
            entry[0] += e.name or ""
            entry[1] += e.arguments
    return "".join(e for e in out if isinstance(e, str)), [tuple(c) for c in calls.values()]


# The text each family writes for a call (the formats their templates render and describe).
WRITTEN = {
    "qwen": ('<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>',
             "", [("get_weather", '{"city": "Paris"}')]),
    "qwen, two calls and text first": (
        'Checking.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n'
        '</tool_call>\n<tool_call>\n{"name": "now", "arguments": {}}\n</tool_call>',
        "Checking.\n", [("get_weather", '{"city": "Paris"}'), ("now", "{}")]),
    "llama 3.x": ('{"name": "get_weather", "parameters": {"city": "Paris"}}', "",
                  [("get_weather", '{"city": "Paris"}')]),
    "llama 3.x after python_tag": (
        '<|python_tag|>{"name": "get_weather", "parameters": {"city": "Paris"}}', "",
        [("get_weather", '{"city": "Paris"}')]),
    "mistral nemo": ('[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Paris"}}, '
                     '{"name": "now", "arguments": {}}]', "",
                     [("get_weather", '{"city": "Paris"}'), ("now", "{}")]),
    "mistral v0.3": ('[TOOL_CALLS] [{"name": "get_weather", "arguments": {"city": "Paris"}}]', "",
                     [("get_weather", '{"city": "Paris"}')]),
    "arguments as a JSON string": (
        '<tool_call>\n{"name": "now", "arguments": "{\\"tz\\": \\"UTC\\"}"}\n</tool_call>', "",
        [("now", '{"tz": "UTC"}')]),
    "plain text": ("It is sunny in Paris <tool_ maybe.", "It is sunny in Paris <tool_ maybe.", []),
    "a JSON answer that is no call": ('{"city": "Paris"}', '{"city": "Paris"}', []),
    "a JSON object naming no offered function": ('{"name": "launch", "parameters": {}}',
                                                 '{"name": "launch", "parameters": {}}', []),
}


@pytest.mark.parametrize("case", list(WRITTEN))
@pytest.mark.parametrize("step", [1, 2, 7, 10_000])
def test_the_parser_reads_each_family_whole_or_in_pieces(case, step):
    text, content, calls = WRITTEN[case]
    parser, out = events(text, step)
    assert joined(out) == (content, calls)
    assert parser.content == content
    assert [(c.name, c.arguments) for c in parser.calls] == calls
    assert len({c.id for c in parser.calls}) == len(calls)


def test_a_call_streams_its_name_first_then_its_arguments_in_pieces():
    _, out = events('<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n'
                    '</tool_call>', 3)
    head, rest = out[0], out[1:]
    assert (head.index, head.name, head.arguments) == (0, "get_weather", "")
    assert len(head.id) == 9 and head.id.isalnum()
    assert len(rest) > 3 and all(d.id is None and d.name is None for d in rest)
    assert head.openai() == {"index": 0, "id": head.id, "type": "function",
                             "function": {"name": "get_weather", "arguments": ""}}


def test_parallel_false_keeps_the_first_call_only():
    parser, out = events(WRITTEN["mistral nemo"][0], 5, parallel=False)
    assert joined(out) == ("", [("get_weather", '{"city": "Paris"}')])


def test_a_call_cut_short_is_kept_as_far_as_it_came():
    parser, out = events('<tool_call>\n{"name": "get_weather", "arguments": {"city": "Pa', 4)
    assert [(c.name, c.arguments) for c in parser.calls] == [("get_weather", '{"city": "Pa')]
    assert joined(out)[1] == [("get_weather", '{"city": "Pa')]


@pytest.mark.parametrize("template, expected", [
    (QWEN, ['<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>',
            "<tool_response>\nSunny, 21 C\n</tool_response>", '"name": "get_weather"',
            "<|im_start|>assistant\n"]),
    (LLAMA, ['{"name": "get_weather", "parameters": {"city": "Paris"}}<|eot_id|>',
             '<|start_header_id|>ipython<|end_header_id|>\n\n"Sunny, 21 C"<|eot_id|>',
             "Environment: ipython", '"name": "get_weather"',
             "<|start_header_id|>assistant<|end_header_id|>\n\n"]),
    (MISTRAL, ['[TOOL_CALLS] [{"name": "get_weather", "arguments": {"city": "Paris"}, "id": "',
               '[TOOL_RESULTS] {"content": Sunny, 21 C, "call_id": "', "[AVAILABLE_TOOLS] [",
               '"name": "get_weather"']),
    (NEMO, ['[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Paris"}, "id": "',
            '[TOOL_RESULTS]{"content": Sunny, 21 C, "call_id": "', "[AVAILABLE_TOOLS][",
            '"name": "get_weather"']),
])
def test_the_real_templates_render_tools_calls_and_results(template, expected):
    prompt = render_chat(template, HISTORY, [WEATHER, CLOCK], bos_token="<s>", eos_token="</s>")
    for piece in expected:
        assert piece in prompt, (piece, prompt)


@pytest.mark.parametrize("template", [MISTRAL, NEMO])
def test_a_clients_call_id_becomes_one_mistrals_template_accepts_the_same_each_time(template):
    prompt = render_chat(template, HISTORY, [WEATHER], bos_token="<s>", eos_token="</s>")
    mapped = template_id("call_0123456789abcdef")
    assert len(mapped) == 9 and mapped.isalnum() and prompt.count(f'"{mapped}"') == 2
    assert template_id("abcDEF123") == "abcDEF123"  # ours pass unchanged


def test_a_conversation_a_template_refuses_is_a_template_error_naming_messages():
    two = dict(HISTORY[1], tool_calls=HISTORY[1]["tool_calls"] * 2)
    with pytest.raises(TemplateError, match="single tool-calls") as info:
        render_chat(LLAMA, [HISTORY[0], two], [WEATHER], bos_token="<s>", eos_token="</s>")
    assert info.value.field == "messages"


def test_each_template_is_recognised_as_its_family():
    assert [family(t) for t in (QWEN, LLAMA, MISTRAL, NEMO, "{{ tools }}")] == [
        "hermes", "llama3", "mistral", "mistral", "json"]


@pytest.mark.parametrize("template, prefill, key, text", [
    (QWEN, "<tool_call>\n", "arguments", '{"name": "get_weather", "arguments": {"city": "Oslo"}}'),
    (LLAMA, "", "parameters", '{"name": "get_weather", "parameters": {"city": "Oslo"}}'),
    (MISTRAL, "[TOOL_CALLS] ", "arguments",
     '[{"name": "get_weather", "arguments": {"city": "Oslo"}}]'),
    (NEMO, "[TOOL_CALLS]", "arguments",
     '[{"name": "get_weather", "arguments": {"city": "Oslo"}}]'),
])
def test_a_forced_call_has_the_familys_opening_and_a_schema_its_call_follows(template, prefill,
                                                                              key, text):
    forced = forced_call(template, Tools((WEATHER, CLOCK), "function", name="get_weather"))
    assert forced.prefill == prefill
    jsonschema.validate(json.loads(text), forced.schema)
    wrong = text.replace("get_weather", "now")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(json.loads(wrong), forced.schema)
    parser, out = events(forced.prefill + text, 3)
    assert joined(out) == ("", [("get_weather", '{"city": "Oslo"}')])
    required = forced_call(template, Tools((WEATHER, CLOCK), "required")).schema
    jsonschema.validate(json.loads(wrong.replace('{"city": "Oslo"}', "{}")), required)


def test_mistral_v0_3s_spaced_opening_is_kept_and_nemos_is_not():
    assert forced_call(MISTRAL, Tools((WEATHER,), "required")).prefill == "[TOOL_CALLS] "
    assert forced_call(NEMO, Tools((WEATHER,), "required")).prefill == "[TOOL_CALLS]"
    for template in (MISTRAL, NEMO):
        one = forced_call(template, Tools((WEATHER,), "required", parallel=False)).schema
        assert one["maxItems"] == 1


def test_tools_and_tool_choice_are_checked_and_converted():
    assert tools_of(None, None, None) is None
    assert tools_of([WEATHER], "none", None) is None
    auto = tools_of([WEATHER, CLOCK], None, False)
    assert (auto.choice, auto.parallel, auto.names) == ("auto", False, ["get_weather", "now"])
    named = tools_of([WEATHER], {"type": "function", "function": {"name": "get_weather"}}, None)
    assert (named.choice, named.name, named.forced) == ("function", "get_weather", True)
    for bad, param in (([WEATHER], {"type": "function", "function": {"name": "x"}}),
                       ([{"type": "function", "function": {"name": "a b"}}], "auto"),
                       ([WEATHER, WEATHER], "auto"),
                       ([{"type": "function", "function": {"name": "f", "parameters": []}}],
                        "auto")):
        with pytest.raises(ApiError) as info:
            tools_of(bad, param, None)
        assert info.value.status == 400 and info.value.param.startswith(("tool", "tools"))
