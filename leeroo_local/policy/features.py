"""Prompt text -> sparse n-gram counts: the one tokenizer shared by training and routing.

Pure Python (a regular expression and a dict), so the decision path needs no tokenizer library
and costs tens of microseconds. The vocabulary is learned from the training questions and
stored next to the ONNX file; the ONNX graph turns counts into TF-IDF and scores.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

# Words, numbers and single symbols; symbols ($, ^, =, \) say "math" or "code" as much as words.
_TOKEN = re.compile(r"[^\W\d_]+|\d+|[^\w\s]")
_LONG_NUMBER = 3  # numbers with this many digits or more collapse to one token per length


@dataclass(frozen=True)
class FeatureConfig:
    """How text becomes features; stored in the policy's labels so routing matches training."""

    ngrams: int = 2
    min_df: int = 2
    max_features: int = 50000
    max_chars: int = 4000

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict) -> FeatureConfig:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def prompt_text(question: str, options: Sequence[str] | None = None) -> str:
    """A question record as the prompt a user would send: the question, then lettered options."""
    if not options:
        return question
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return question + "\n" + "\n".join(f"{letters[i % 26]}. {o}" for i, o in enumerate(options))


def tokens(text: str, max_chars: int = 4000) -> list[str]:
    """Lower-cased words, digit runs (long ones as '#'*len) and symbols of the first max_chars."""
    out = _TOKEN.findall(text[:max_chars].lower())
    return [("#" * len(t) if len(t) >= _LONG_NUMBER and t.isdigit() else t) for t in out]


def ngrams(text: str, config: FeatureConfig) -> list[str]:
    """Unigrams, then bigrams (joined by a space) up to config.ngrams."""
    toks = tokens(text, config.max_chars)
    grams = list(toks)
    for n in range(2, config.ngrams + 1):
        grams.extend(" ".join(toks[i:i + n]) for i in range(len(toks) - n + 1))
    return grams


def build_vocab(texts: Iterable[str], config: FeatureConfig) -> tuple[list[str], np.ndarray]:
    """The n-grams seen in at least min_df texts (most frequent first, at most max_features),
    and their document frequencies."""
    df: Counter[str] = Counter()
    n = 0
    for text in texts:
        df.update(set(ngrams(text, config)))
        n += 1
    kept = [(g, c) for g, c in df.items() if c >= config.min_df]
    kept.sort(key=lambda gc: (-gc[1], gc[0]))
    kept = kept[: config.max_features]
    return [g for g, _ in kept], np.array([c for _, c in kept], dtype=np.float64)


class Featurizer:
    """Maps text to (ids, counts) over a fixed vocabulary; unknown n-grams are dropped."""

    def __init__(self, vocab: Sequence[str], config: FeatureConfig):
        self.config = config
        self.vocab = list(vocab)
        self._index = {g: i for i, g in enumerate(self.vocab)}

    def __call__(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        counts: dict[int, int] = {}
        get = self._index.get
        for g in ngrams(text, self.config):
            i = get(g)
            if i is not None:
                counts[i] = counts.get(i, 0) + 1
        ids = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
        vals = np.fromiter(counts.values(), dtype=np.float32, count=len(counts))
        return ids, vals

    def matrix(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """CSR parts (indptr, indices, counts) for many texts (training and evaluation)."""
        indptr = [0]
        all_ids, all_vals = [], []
        for text in texts:
            ids, vals = self(text)
            all_ids.append(ids)
            all_vals.append(vals)
            indptr.append(indptr[-1] + len(ids))
        return (np.array(indptr, dtype=np.int64),
                np.concatenate(all_ids) if all_ids else np.zeros(0, np.int64),
                np.concatenate(all_vals) if all_vals else np.zeros(0, np.float32))
