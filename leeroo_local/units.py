"""Human sizes ("24GB", "512MiB") to bytes and back; decimal and binary units both accepted."""

from __future__ import annotations

import re

_UNITS = {
    "": 1,
    "B": 1,
    "K": 1000,
    "KB": 1000,
    "M": 1000**2,
    "MB": 1000**2,
    "G": 1000**3,
    "GB": 1000**3,
    "T": 1000**4,
    "TB": 1000**4,
    "KIB": 1024,
    "MIB": 1024**2,
    "GIB": 1024**3,
    "TIB": 1024**4,
}
_PATTERN = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([a-zA-Z]*)\s*$")


def parse_size(text: str | int | float) -> int:
    """Bytes in a size such as "24GB", "24 GiB", "1.5T" or a plain number of bytes.

    GB is decimal (10^9) as on hub pages and GPU boxes; GiB is binary.
    """
    if isinstance(text, (int, float)):
        if text < 0:
            raise ValueError(f"a size cannot be negative: {text}")
        return int(text)
    match = _PATTERN.match(text)
    if not match:
        raise ValueError(f"not a size: {text!r} (try 24GB, 16GiB or 512MB)")
    number, unit = match.groups()
    factor = _UNITS.get(unit.upper())
    if factor is None:
        raise ValueError(f"unknown unit {unit!r} in {text!r} (use B, MB, GB, TB, MiB, GiB, TiB)")
    return int(float(number) * factor)


def format_size(n: int | float, binary: bool = True) -> str:
    """A short readable size: 1536 MiB -> "1.50 GiB"."""
    step, names = (1024.0, ["B", "KiB", "MiB", "GiB", "TiB"]) if binary else (
        1000.0,
        ["B", "KB", "MB", "GB", "TB"],
    )
    value = float(n)
    for name in names:
        if abs(value) < step or name == names[-1]:
            return f"{value:.0f} {name}" if name == "B" else f"{value:.2f} {name}"
        value /= step
    raise AssertionError("unreachable")
