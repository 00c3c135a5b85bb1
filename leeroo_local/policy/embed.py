"""Dense prompt vectors from a static token-embedding table, looked up with the encoder's own
subword vocabulary: a notion of "similar questions" that does not need
shared words, in any script the encoder's vocabulary covers.

The table (vocabulary x d, float16) is distilled once from a sentence encoder (distill.py) and
copied into each policy folder with the tokenizer; the ONNX graph pools the rows of a prompt's
subword ids (idf-weighted mean, centred, unit length). Words are split as features.py splits
them (so scripts without spaces are characters) and each word's subword ids are memoised: a
prompt costs dictionary lookups, not a full tokenizer pass.

The words are cut into subwords here, in Python, as the encoder's BERT WordPiece tokenizer
(`tokenizer.json`) cuts them: lower case, accents stripped, greedy longest match with `##`
continuations. Loading the `tokenizers` library's Rust tokenizer cost 22-23 ms of every process's
first route (idle, import included); reading its vocabulary here costs about 13. tests/test_wordpiece.py checks that both give
the same ids on every word of the shipped questions.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from ..errors import DataError
from .features import raw_tokens

TOKENIZER_FILE = "tokenizer.json"
TABLE_FILE = "table.npy"
_CACHE_LIMIT = 200_000  # memoised words per router; beyond it new words are encoded each time


def _is_cjk(ch: str) -> bool:
    """BERT's "Chinese character" ranges, each of which is a word of its own."""
    cp = ord(ch)
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF
            or 0x2A700 <= cp <= 0x2B73F or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF
            or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


class WordPiece:
    """BERT's uncased WordPiece over one word at a time (what `tokenizer.json` describes):
    normalise, split at CJK characters, punctuation and spaces, greedy longest match."""

    def __init__(self, path: str | Path):
        try:
            spec = json.loads(Path(path).read_text(encoding="utf-8"))
            model = spec["model"]
            if model.get("type") != "WordPiece":
                raise ValueError(f"a {model.get('type')} model, not WordPiece")
            self.vocab: dict[str, int] = dict(model["vocab"])
            self.unk = self.vocab[model.get("unk_token", "[UNK]")]
            self.prefix = model.get("continuing_subword_prefix", "##")
            self.max_chars = int(model.get("max_input_chars_per_word", 100))
            normalizer = spec.get("normalizer") or {}
            self.lowercase = bool(normalizer.get("lowercase", True))
            accents = normalizer.get("strip_accents")
            self.strip_accents = self.lowercase if accents is None else bool(accents)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DataError(f"{path}: cannot load the subword tokenizer: {exc}") from None

    def normalise(self, text: str) -> str:
        """BertNormalizer's order: drop control characters, spaces for whitespace, strip
        accents, then lower-case."""
        text = "".join(" " if c.isspace() else c for c in text
                       if c in "\t\n\r" or not (c in "\0\ufffd" or unicodedata.category(c)[0] == "C"))
        if self.strip_accents:
            text = "".join(c for c in unicodedata.normalize("NFD", text)
                           if unicodedata.category(c) != "Mn")
        return text.lower() if self.lowercase else text

    def words(self, text: str) -> list[str]:
        out, current = [], []
        for ch in self.normalise(text):
            if ch.isspace() or _is_cjk(ch) or _is_punctuation(ch):
                if current:
                    out.append("".join(current))
                    current = []
                if not ch.isspace():
                    out.append(ch)
            else:
                current.append(ch)
        if current:
            out.append("".join(current))
        return out

    def piece_ids(self, word: str) -> list[int]:
        if len(word) > self.max_chars:
            return [self.unk]
        ids, start, vocab = [], 0, self.vocab
        while start < len(word):
            end, found = len(word), None
            while start < end:
                sub = word[start:end] if start == 0 else self.prefix + word[start:end]
                found = vocab.get(sub)
                if found is not None:
                    break
                end -= 1
            if found is None:
                return [self.unk]
            ids.append(found)
            start = end
        return ids

    def encode(self, text: str) -> list[int]:
        return [i for w in self.words(text) for i in self.piece_ids(w)]


class Pieces:
    """Prompt text -> the encoder's subword ids (int64), words memoised."""

    def __init__(self, tokenizer_path: str | Path, max_chars: int = 4000):
        self._tokenizer = WordPiece(tokenizer_path)
        self.max_chars = max_chars
        self._cache: dict[str, list[int]] = {}

    def word_ids(self, word: str) -> list[int]:
        ids = self._cache.get(word)
        if ids is None:
            ids = self._tokenizer.encode(word)
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
