"""Plain-text formatting shared by the panels: durations, energy, memory, score bars.

Pure functions (no Textual), so the numbers the interface shows are tested on their own.
"""

from __future__ import annotations

from ..units import format_size

DASH = "—"
_EIGHTHS = " ▏▎▍▌▋▊▉"
JOULES_PER_WH = 3600.0


def seconds(value: float | None) -> str:
    """A duration at a precision that suits its size: 3 ms, 0.42 s, 12.3 s."""
    if value is None:
        return DASH
    if value < 0.1:
        return f"{value * 1000:.0f} ms"
    if value < 10:
        return f"{value:.2f} s"
    return f"{value:.1f} s"


def rate(tokens_per_s: float | None) -> str:
    """Decode speed; 0 means it could not be measured (one token or none)."""
    return f"{tokens_per_s:.1f} tok/s" if tokens_per_s else DASH


def energy(joules: float | None) -> str:
    """Joules below one watt-hour, watt-hours above: 0.84 J, 18.6 J, 312 J, 1.25 Wh."""
    if joules is None:
        return DASH
    if joules >= JOULES_PER_WH:
        return f"{joules / JOULES_PER_WH:.2f} Wh"
    if joules < 10:
        return f"{joules:.2f} J"
    if joules < 100:
        return f"{joules:.1f} J"
    return f"{joules:.0f} J"


def memory(n_bytes: int | None) -> str:
    return format_size(n_bytes) if n_bytes else DASH


def keep_alive(left_s: float | None) -> str:
    """Keep-alive left as 45s or 4m05s; a dash when it does not apply (cold or busy)."""
    if left_s is None:
        return DASH
    left = int(round(left_s))
    return f"{left // 60}m{left % 60:02d}s" if left >= 60 else f"{left}s"


def params(billions: float | None) -> str:
    """Active parameters, the cost of an expert: 270M, 7.2B."""
    if billions is None:
        return DASH
    if billions < 1:
        return f"{billions * 1000:.3g}M"
    return f"{billions:.3g}B"


def bar(fraction: float, width: int) -> str:
    """A horizontal bar `width` cells wide filled to `fraction` (clamped to 0..1), in eighths."""
    fraction = min(1.0, max(0.0, fraction))
    eighths = round(fraction * width * 8)
    full, part = divmod(eighths, 8)
    text = "█" * full + (_EIGHTHS[part] if part else "")
    return text.ljust(width)


def bar_fractions(scores: dict[str, float]) -> dict[str, float]:
    """Bar lengths for a policy's scores: as they are when they lie in 0..1 (probabilities),
    else scaled between the lowest and the highest, so utilities of any sign still compare."""
    if not scores:
        return {}
    low, high = min(scores.values()), max(scores.values())
    if low >= 0 and high <= 1:
        return dict(scores)
    span = high - low
    return {k: (v - low) / span if span else 1.0 for k, v in scores.items()}


def shorten(text: str, width: int) -> str:
    """One line of at most `width` characters, with an ellipsis when cut."""
    line = " ".join(text.split())
    return line if len(line) <= width else line[: max(0, width - 1)] + "…"
