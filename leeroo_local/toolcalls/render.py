"""An expert's own chat template (the GGUF's `tokenizer.chat_template`) rendered with Jinja2 the
way Hugging Face's `apply_chat_template` and llama.cpp's `--jinja` do: a sandbox, `trim_blocks`
and `lstrip_blocks`, `tojson` without HTML escaping, `raise_exception` and `strftime_now`, and
`tools` offered to the template. Both local backends render tool conversations here, so the
worker and llama-server read the same prompt."""

from __future__ import annotations

import datetime
import functools
import json

from ..errors import TemplateError
from .calls import for_template


class _Refused(Exception):
    """The template's own raise_exception."""


def _tojson(value, ensure_ascii=False, indent=None, separators=None, sort_keys=False) -> str:
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                      sort_keys=sort_keys)


def _raise(message: str):
    raise _Refused(message)


def _strftime_now(fmt: str) -> str:
    return datetime.datetime.now().strftime(fmt)


@functools.lru_cache(maxsize=16)
def _compiled(template: str):
    import jinja2
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = _tojson
    env.globals.update(raise_exception=_raise, strftime_now=_strftime_now)
    return env.from_string(template)


def render_chat(template: str, messages: list[dict], tools: list[dict] | None = None, *,
                bos_token: str = "", eos_token: str = "",
                add_generation_prompt: bool = True) -> str:
    """The prompt `template` makes of `messages` (OpenAI-shaped: assistant `tool_calls`, `tool`
    results) and `tools`. A template that refuses the conversation, or fails on it, is a
    TemplateError naming `messages`."""
    import jinja2

    try:
        return _compiled(template).render(
            messages=for_template(messages), tools=list(tools) if tools else None,
            bos_token=bos_token, eos_token=eos_token,
            add_generation_prompt=add_generation_prompt)
    except _Refused as exc:
        raise TemplateError(f"messages: the expert's chat template refuses this conversation: "
                            f"{exc}", field="messages") from None
    except (jinja2.TemplateError, TypeError, ValueError, KeyError, IndexError) as exc:
        raise TemplateError(f"messages: the expert's chat template cannot render this "
                            f"conversation ({type(exc).__name__}: {exc})",
                            field="messages") from None
