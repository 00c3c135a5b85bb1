"""Tool calls, whatever runs the expert: what a request offers (`Tools`), how an expert's own chat
template renders them (`render`), how a call is forced by grammar (`formats`), and how the
expert's text becomes OpenAI tool calls, whole or streamed (`parse`).

Backend-neutral: the worker (llama-cpp-python) and llama-server render and force the same way,
and the service parses what either writes.
"""

from .calls import ToolCall, ToolCallDelta, Tools, has_tool_turns, new_call_id
from .formats import ForcedCall, forced_call
from .parse import ToolCallParser
from .render import render_chat

__all__ = ["ToolCall", "ToolCallDelta", "Tools", "has_tool_turns", "new_call_id", "ForcedCall",
           "forced_call", "ToolCallParser", "render_chat"]
