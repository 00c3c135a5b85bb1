"""Text that UTF-8 cannot carry (lone surrogates: JSON's "\\ud800", or argv bytes Python could
not decode) is found before it reaches a tokenizer, a log row or a response, where it would fail
as a UnicodeEncodeError far from its cause."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from .errors import UnencodableText


def find_unencodable(value: Any, field: str = "") -> tuple[str, int, str] | None:
    """(field path, character index, the character) of the first string in `value` (a string, a
    pydantic model, or lists and dicts of them) that UTF-8 cannot encode; None when all can."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            return field, exc.start, value[exc.start]
        return None
    if isinstance(value, BaseModel):
        items = ((name, getattr(value, name)) for name in type(value).model_fields)
    elif isinstance(value, dict):
        items = ((str(k), v) for k, v in value.items())
    elif isinstance(value, (list, tuple)):
        items = ((str(i), v) for i, v in enumerate(value))
    else:
        return None
    for name, item in items:
        found = find_unencodable(item, f"{field}.{name}" if field else name)
        if found:
            return found
    return None


def require_encodable(value: Any, field: str = "") -> None:
    """UnencodableText naming the field and the character, when some text cannot be encoded."""
    found = find_unencodable(value, field)
    if found:
        raise UnencodableText(unencodable_message(*found), field=found[0])


def unencodable_message(field: str, index: int, char: str) -> str:
    return (f"{field}: character {index} is U+{ord(char):04X}, a lone surrogate that UTF-8 "
            f"cannot encode; send valid Unicode (a surrogate pair must be complete)")


def printable(text: str) -> str:
    """`text` itself when UTF-8 can encode it, else with the culprits as `\\udXXX` escapes (for
    log rows and error messages, which must be written whatever the request held)."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
