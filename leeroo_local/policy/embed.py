"""Dense prompt vectors from a static token-embedding table, looked up with the encoder's own
subword tokenizer (the `tokenizers` library): a notion of "similar questions" that does not need
shared words, in any script the encoder's vocabulary covers.

The table (vocabulary x d, float16) is distilled once from a sentence encoder (distill.py) and
copied into each policy folder with the tokenizer; the ONNX graph pools the rows of a prompt's
subword ids (idf-weighted mean, centred, unit length). Words are split as features.py splits
them (so scripts without spaces are characters) and each word's subword ids are memoised: a
prompt costs dictionary lookups, not a full tokenizer pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from ..errors import DataError
from .features import raw_tokens

TOKENIZER_FILE = "tokenizer.json"
TABLE_FILE = "table.npy"
_CACHE_LIMIT = 200_000  # memoised words per router; beyond it new words are encoded each time


class Pieces:
    """Prompt text -> the encoder's subword ids (int64), words memoised."""

    def __init__(self, tokenizer_path: str | Path, max_chars: int = 4000):
        from tokenizers import Tokenizer

        try:
            self._tokenizer = Tokenizer.from_file(str(tokenizer_path))
        except Exception as exc:  # the Rust side raises its own Exception type
            raise DataError(f"{tokenizer_path}: cannot load the subword tokenizer: {exc}") from None
        self._tokenizer.no_padding()
        self._tokenizer.no_truncation()
        self.max_chars = max_chars
        self._cache: dict[str, list[int]] = {}

    def word_ids(self, word: str) -> list[int]:
        ids = self._cache.get(word)
        if ids is None:
            ids = self._tokenizer.encode(word, add_special_tokens=False).ids
            if len(self._cache) < _CACHE_LIMIT:
                self._cache[word] = ids
        return ids

    def __call__(self, text: str, raw: list[str] | None = None) -> np.ndarray:
        """Subword ids of text (`raw`: its raw_tokens with scripts split, when already found)."""
        out: list[int] = []
        cache, extend = self._cache, out.extend
        for word in raw_tokens(text, self.max_chars) if raw is None else raw:
            ids = cache.get(word)
            extend(ids if ids is not None else self.word_ids(word))
        return np.array(out, dtype=np.int64)

    def many(self, texts: Iterable[str]) -> list[np.ndarray]:
        return [self(t) for t in texts]


def load_table(folder: str | Path) -> np.ndarray:
    """The static table of an embedder folder (vocabulary x d, float16)."""
    path = Path(folder) / TABLE_FILE
    try:
        table = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read the embedding table: {exc}") from None
    if table.ndim != 2:
        raise DataError(f"{path}: the embedding table must be 2-D, not {table.shape}")
    return table


def piece_idf(pieces: Sequence[np.ndarray], vocab_size: int) -> np.ndarray:
    """Smooth idf of each subword id over training prompts (unseen ids: the largest)."""
    df = np.zeros(vocab_size)
    for ids in pieces:
        df[np.unique(ids)] += 1
    return (np.log((1.0 + len(pieces)) / (1.0 + df)) + 1.0).astype(np.float32)


def pooled(pieces: Sequence[np.ndarray], table: np.ndarray, idf: np.ndarray) -> np.ndarray:
    """idf-weighted mean of each prompt's rows of `table` (prompts x d, float32), as the graph
    computes it before centring."""
    out = np.zeros((len(pieces), table.shape[1]), np.float32)
    for i, ids in enumerate(pieces):
        if len(ids):
            w = idf[ids]
            out[i] = (w @ table[ids].astype(np.float32)) / max(float(w.sum()), 1e-6)
    return out


def unit_rows(X: np.ndarray) -> np.ndarray:
    return (X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-6)).astype(np.float32)
