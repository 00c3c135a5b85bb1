"""How each family of chat templates writes a tool call, and how one is forced.

- Hermes (Qwen2.5, Hermes 2/3); the template shows `<tool_call>`; the expert writes one block
  per call: `<tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>`.
- Mistral (v0.3, Nemo); `[TOOL_CALLS]`; one array: `[TOOL_CALLS][{"name": ..., "arguments":
  {...}}, ...]` (v0.3 with a space before the array).
- Llama 3.x; `"parameters"` in its tool prompt; `{"name": ..., "parameters": {...}}`, maybe
  after `<|python_tag|>`.
- Other templates that render tools: `{"name": ..., "arguments": {...}}`.

With `tool_choice` `required` or a named function, the answer is forced: the family's opening
(`<tool_call>\\n`, `[TOOL_CALLS]`) is appended to the rendered prompt, as if the expert had
written it, and the rest is constrained to the call's JSON by a JSON schema (llama.cpp's
JSON-schema-to-grammar, the path `response_format` takes), so the call always parses. The
opening is given back as the first piece of the answer: the parser sees what the expert would
have written.
"""

from __future__ import annotations

from dataclasses import dataclass

from .calls import Tools


@dataclass(frozen=True)
class ForcedCall:
    """What makes a forced answer a call: text appended to the prompt, and the JSON schema the
    rest follows."""

    prefill: str
    schema: dict


def family(template: str) -> str:
    """hermes, mistral, llama3 or json: how the expert writes a call (from its chat template)."""
    if "<tool_call>" in template:
        return "hermes"
    if "[TOOL_CALLS]" in template:
        return "mistral"
    if "<|start_header_id|>" in template and '"parameters"' in template:
        return "llama3"
    return "json"


def _call_schema(tools: Tools, name: str, key: str) -> dict:
    return {"type": "object", "additionalProperties": False, "required": ["name", key],
            "properties": {"name": {"const": name}, key: tools.schema_of(name)}}


def forced_call(template: str, tools: Tools) -> ForcedCall:
    """The prefill and schema that force a call in this template's format: the named function,
    or any of the offered ones (`required`)."""
    kind = family(template)
    key = "parameters" if kind == "llama3" else "arguments"
    names = [tools.name] if tools.choice == "function" and tools.name else tools.names
    calls = [_call_schema(tools, n, key) for n in names]
    one = calls[0] if len(calls) == 1 else {"anyOf": calls}
    if kind == "mistral":
        many: dict = {"type": "array", "items": one, "minItems": 1}
        if not tools.parallel:
            many["maxItems"] = 1
        spaced = "[TOOL_CALLS] [" in template  # v0.3 writes a space where Nemo does not
        return ForcedCall(prefill="[TOOL_CALLS] " if spaced else "[TOOL_CALLS]", schema=many)
    if kind == "hermes":
        return ForcedCall(prefill="<tool_call>\n", schema=one)
    return ForcedCall(prefill="", schema=one)
