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
# Scripts written without spaces (Chinese, Japanese kana, Thai, Lao, Khmer, Myanmar) would be one
# giant "word" per sentence: each of their characters is a token instead, so their unigrams and
# bigrams are the character 1-2-grams such text needs.
_NO_SPACES = ("\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3100-\u312f"
              "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff")
_TOKEN_SCRIPTS = re.compile(rf"[{_NO_SPACES}]|[^\W\d_{_NO_SPACES}]+|\d+|[^\w\s]")
_LONG_NUMBER = 3  # numbers with this many digits or more collapse to one token per length


@dataclass(frozen=True)
class FeatureConfig:
    """How text becomes features; stored in the policy's labels so routing matches training."""

    ngrams: int = 2
    min_df: int = 2
    max_features: int = 50000
    max_chars: int = 4000
    split_scripts: bool = True  # characters of scripts without spaces are tokens (False: v1)
    form: bool = True  # pseudo-tokens of the prompt's form (form_tokens; False: before v3)

    def to_dict(self) -> dict:
        """The fields; `form` only when on, so a words-only config reads (and hashes, as the
        fit's cached predictions are keyed) as it did before the field existed."""
        out = dict(self.__dict__)
        if not out["form"]:
            del out["form"]
        return out

    @classmethod
    def from_dict(cls, data: dict) -> FeatureConfig:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        known.setdefault("split_scripts", False)  # a policy trained before the field existed
        known.setdefault("form", False)
        return cls(**known)


def prompt_text(question: str, options: Sequence[str] | None = None) -> str:
    """A question record as the prompt a user would send: the question, then lettered options."""
    if not options:
        return question
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return question + "\n" + "\n".join(f"{letters[i % 26]}. {o}" for i, o in enumerate(options))


def raw_tokens(text: str, max_chars: int = 4000, split_scripts: bool = True) -> list[str]:
    """Lower-cased words, digit runs and symbols of the first max_chars characters; with
    split_scripts, each character of a script written without spaces."""
    pattern = _TOKEN_SCRIPTS if split_scripts else _TOKEN
    return pattern.findall(text[:max_chars].lower())


def tokens(text: str, max_chars: int = 4000, split_scripts: bool = True,
           raw: list[str] | None = None) -> list[str]:
    """raw_tokens (or the `raw` already found) with long digit runs collapsed to '#' * length
    (a number's value says little about a question, its size a bit)."""
    out = raw_tokens(text, max_chars, split_scripts) if raw is None else raw
    return [("#" * len(t) if len(t) >= _LONG_NUMBER and t.isdigit() else t) for t in out]


_CODE = re.compile(r"^\s*(def |class |import |from \w+ import|#include|return\b)|[{};]\s*$", re.M)
_OPTION = re.compile(r"^\s*\(?[A-Ja-j][.)]\s", re.M)
_SHOT = re.compile(r"^\s*(Q|A|Question|Answer|Input|Output|Example)\s*\d*\s*:", re.M)


def _bucket(value: float) -> int:
    """log2 bucket of a count: 0, 1, 2-3, 4-7, ..."""
    return int(value).bit_length()


def form_tokens(text: str, max_chars: int = 4000) -> list[str]:
    """Pseudo-tokens of the prompt's form, not its words: how long, how many lines, code,
    LaTeX, answer options, few-shot layout, share of digits and commas, case of the first
    letter, the closing character. The kind of work shows in the form as much as in the
    words (a lower-case query without '?' is a search-style question, a comma list of nouns a
    generation task). Each starts with '<', which the word tokenizer never joins to a word."""
    t = text[:max_chars]
    s = t.strip()
    n = max(len(s), 1)
    out = [f"<len:{_bucket(len(s) / 16)}>", f"<lines:{_bucket(s.count(chr(10)))}>",
           f"<digits:{min(int(20 * sum(c.isdigit() for c in s) / n), 5)}>",
           f"<commas:{min(int(40 * s.count(',') / n), 5)}>"]
    if s:
        out.append("<first:lower>" if s[0].islower() else "<first:upper>" if s[0].isupper()
                   else "<first:other>")
        last = s[-1]
        out.append(f"<last:{last}>" if last in "?.:!)\"}" else "<last:word>" if last.isalnum()
                   else "<last:other>")
    if _CODE.search(t) or "\n    " in t or "\n\t" in t:
        out.append("<code>")
    if "$" in t or "\\frac" in t or "\\boxed" in t:
        out.append("<latex>")
    if len(_OPTION.findall(t)) >= 2:
        out.append("<options>")
    if len(_SHOT.findall(t)) >= 2:
        out.append("<fewshot>")
    return out


def ngrams(text: str, config: FeatureConfig, raw: list[str] | None = None) -> list[str]:
    """Unigrams, then bigrams (joined by a space) up to config.ngrams, then (config.form)
    the form's pseudo-tokens."""
    toks = tokens(text, config.max_chars, config.split_scripts, raw)
    grams = list(toks)
    for n in range(2, config.ngrams + 1):
        grams.extend(" ".join(toks[i:i + n]) for i in range(len(toks) - n + 1))
    if config.form:
        grams.extend(form_tokens(text, config.max_chars))
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

    def __call__(self, text: str, raw: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """ids and counts of text's known n-grams (`raw`: its raw_tokens, when already found)."""
        counts: dict[int, int] = {}
        get = self._index.get
        for g in ngrams(text, self.config, raw):
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
