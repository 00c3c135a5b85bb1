"""Add an expert to the user's models.toml, or take one out, without touching anything else.

The user's models.toml may be hand-written, with comments: an added expert is appended as one
`[[experts]]` table (after a comment saying where it came from), and removal cuts exactly that
table out, so the rest of the file stays as the user wrote it. Every change is written to a
`.partial` file first and checked by loading the whole catalog (shipped, models.toml and
quants.toml) before it replaces the real file, as `save_user_quant` does: a bad entry raises
ConfigError and changes nothing.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path

from ..catalog import load_catalog, render_user_quants, user_catalog_files
from ..errors import ConfigError, UnknownExpert

MARK = "# added by `leeroo-local add`"


def _value(value) -> str:
    """A TOML value: scalars, inline tables, arrays (of inline tables one per line)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        if any(isinstance(v, dict) for v in value):
            return "[\n" + "".join(f"  {_value(v)},\n" for v in value) + "]"
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)  # a valid TOML basic string


def _key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else json.dumps(key)


def render_expert(entry: dict, origin: str) -> str:
    """One [[experts]] table, preceded by the comment that marks it as added."""
    lines = [f"{MARK} from {origin}", "[[experts]]"]
    lines += [f"{_key(k)} = {_value(v)}" for k, v in entry.items() if v is not None]
    return "\n".join(lines) + "\n"


def user_expert_ids() -> list[str]:
    """Ids of the experts in the user's models.toml."""
    models = user_catalog_files()[0]
    if not models.exists():
        return []
    return [b[1] for b in _blocks(models.read_text(encoding="utf-8").splitlines())]


def add_expert(entry: dict, origin: str) -> Path:
    """Append `entry` to the user's models.toml (checked first; ConfigError changes nothing)."""
    models, quants = user_catalog_files()
    old = models.read_text(encoding="utf-8") if models.exists() else ""
    text = (old.rstrip("\n") + "\n\n" if old.strip() else "") + render_expert(entry, origin)
    _replace({models: text})
    return models


def remove_expert(expert_id: str) -> list[dict]:
    """Cut `expert_id` out of the user's models.toml, and its [[quants]] out of quants.toml
    (those name files made from it). Returns the removed quants tables."""
    models, quants = user_catalog_files()
    lines = models.read_text(encoding="utf-8").splitlines() if models.exists() else []
    found = next(((start, end) for start, eid, end in _blocks(lines) if eid == expert_id), None)
    if found is None:
        raise UnknownExpert(f"{expert_id!r} is not in {models}: only experts of your own catalog "
                            "(added or hand-written) can be removed")
    start, end = found
    while start > 0 and lines[start - 1].startswith(MARK):
        start -= 1
    kept = lines[:start] + lines[end:]
    text = "\n".join(kept).strip("\n")
    changes = {models: text + "\n" if text else ""}
    dropped = []
    if quants.exists():
        tables = _toml(quants).get("quants", [])
        dropped = [t for t in tables if t.get("expert") == expert_id]
        if dropped:
            changes[quants] = render_user_quants([t for t in tables if t not in dropped])
    _replace(changes)
    return dropped


def _blocks(lines: list[str]) -> list[tuple[int, str, int]]:
    """(first line, id, line after the last) of each [[experts]] table; a table ends where the
    next array-of-tables header starts (its own [experts.x] sub-tables belong to it)."""
    heads = [i for i, line in enumerate(lines) if line.strip().startswith("[[")]
    out = []
    for k, i in enumerate(heads):
        if lines[i].strip().replace(" ", "") != "[[experts]]":
            continue
        end = heads[k + 1] if k + 1 < len(heads) else len(lines)
        while end > i + 1 and (not lines[end - 1].strip() or lines[end - 1].startswith(MARK)):
            end -= 1
        try:
            eid = tomllib.loads("\n".join(lines[i:end]))["experts"][0].get("id")
        except (tomllib.TOMLDecodeError, KeyError, IndexError):
            continue
        out.append((i, str(eid), end))
    return out


def _toml(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def _replace(changes: dict[Path, str]) -> None:
    """Write each file's new text beside it, load the catalog from the new texts, then swap."""
    models, quants = user_catalog_files()
    models.parent.mkdir(parents=True, exist_ok=True)
    partial = {p: p.with_name(p.name + ".partial") for p in changes}
    try:
        for path, text in changes.items():
            partial[path].write_text(text, encoding="utf-8")
        files = [partial.get(p, p) for p in (models, quants)]
        load_catalog(extra=[f for f in files if f.exists()])
    except BaseException:  # a bad entry, a full disk, Ctrl-C: no .partial stays behind
        for p in partial.values():
            p.unlink(missing_ok=True)
        raise
    for path, p in partial.items():
        os.replace(p, path)
