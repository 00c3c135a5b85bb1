"""The largest values a request or config.toml may ask for, in one place.

They keep a hostile or mistaken value away from llama.cpp, which allocates by some of them (the
penalty window is 4 bytes a token, on every request) and wraps others (its seed is 32 bits).
Values a context bounds more tightly (max_tokens, repeat_last_n) are also capped at the
expert's context when a request is made, with a note saying so.
"""

from __future__ import annotations

MAX_CONTEXT = 1 << 20
"""Tokens: more than any GGUF of the catalog holds (Llama 3.1 and Qwen 2.5: 131,072)."""

MAX_VOCAB = 1 << 20
"""top_k: more than any vocabulary (Gemma 3's is 262,144), so no cut is lost."""

SEED_MIN, SEED_MAX = -(2**63), 2**63 - 1
"""OpenAI's seed range (int64); llama.cpp uses its low 32 bits."""

MAX_MESSAGES = 4096
"""Messages of a chat request, and content parts of one message."""

MAX_STOP = 4
"""Stop strings of a request (OpenAI's limit)."""

MAX_STOP_CHARS = 1000
"""Characters of one stop string (text is held back while it might start one)."""

MAX_NAME_CHARS = 256
"""Characters of a model id, a message's name, a content part's type."""

MAX_THREADS = 1024
MAX_PARALLEL = 256
"""llama-server slots per expert."""


def seed32(seed: int) -> int:
    """The 32-bit seed llama.cpp takes, from any seed in OpenAI's range (its low bits). llama.cpp
    reads 0xFFFFFFFF as "pick one at random", so that one becomes 0xFFFFFFFE: a seed given is
    always reproducible."""
    low = seed & 0xFFFFFFFF
    return 0xFFFFFFFE if low == 0xFFFFFFFF else low
