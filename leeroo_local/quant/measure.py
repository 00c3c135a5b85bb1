"""What a quantization changes in a model's predictions, measured against a reference file.

Next tokens: the sample text is cut into chunks of `n_ctx` tokens, each evaluated from an empty
cache; as in llama.cpp's perplexity tool, only the second half of each chunk is scored, so every
scored token has at least n_ctx/2 tokens of context. Per scored position we keep a few numbers
(the reference's and the candidate's log-probability of the true next token, KL(ref || cand),
whether their top tokens agree), never a distribution: logits arrive in batches from the backend
and are reduced in blocks of rows in float64.

Multiple choice: MMLU-Pro questions (the shipped development split, Apache-2.0), each option
scored by its length-normalised log-likelihood after the question (lm-evaluation-harness's
acc_norm, as bench/starter_outcomes.py does); the models' picks are compared.
"""

from __future__ import annotations

import gzip
import json
import random
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from ..scoring import LETTERS, mc_prompt

SAMPLE = "sample.txt"
_BLOCK = 16  # rows reduced at once: 16 x 262k vocabulary x 8 bytes = 32 MiB per array


def sample_path() -> Path:
    """The shipped text sample (written for this project, Apache-2.0)."""
    return Path(str(resources.files("leeroo_local.quant").joinpath("data", SAMPLE)))


@dataclass
class TokenStats:
    """Per-position reductions for one candidate against the reference."""

    nll_ref: list[float] = field(default_factory=list)
    nll_cand: list[float] = field(default_factory=list)
    kl: list[float] = field(default_factory=list)
    same_top: int = 0

    @property
    def n(self) -> int:
        return len(self.kl)

    def summary(self) -> dict:
        kl = np.array(self.kl)
        return {
            "tokens_scored": self.n,
            "ppl_reference": float(np.exp(np.mean(self.nll_ref))),
            "ppl_candidate": float(np.exp(np.mean(self.nll_cand))),
            "kl_mean": float(kl.mean()),
            "kl_p99": float(np.quantile(kl, 0.99)),
            "kl_max": float(kl.max()),
            "top1_agreement": self.same_top / self.n,
        }


def _log_softmax(rows: np.ndarray) -> np.ndarray:
    x = rows.astype(np.float64)
    x -= x.max(axis=1, keepdims=True)
    x -= np.log(np.exp(x).sum(axis=1, keepdims=True))
    return x


def _reduce(ref: np.ndarray, cand: np.ndarray, targets: np.ndarray, stats: TokenStats) -> None:
    for s in range(0, len(targets), _BLOCK):
        lr = _log_softmax(ref[s:s + _BLOCK])
        lc = _log_softmax(cand[s:s + _BLOCK])
        t = targets[s:s + _BLOCK]
        idx = np.arange(len(t))
        stats.nll_ref.extend((-lr[idx, t]).tolist())
        stats.nll_cand.extend((-lc[idx, t]).tolist())
        # KL >= 0 exactly; float rounding can give -1e-17 for identical rows
        stats.kl.extend(np.maximum((np.exp(lr) * (lr - lc)).sum(axis=1), 0.0).tolist())
        stats.same_top += int((lr.argmax(axis=1) == lc.argmax(axis=1)).sum())


def chunks(tokens: list[int], n_ctx: int, prefix: list[int]) -> list[list[int]]:
    """Whole chunks of n_ctx tokens, each starting with `prefix` (the BOS token, if any)."""
    step = n_ctx - len(prefix)
    return [prefix + tokens[i:i + step] for i in range(0, len(tokens) - step + 1, step)]


def compare_next_tokens(ref, cands: list, text: str, n_tokens: int, n_ctx: int) -> list[TokenStats]:
    """Stats of each candidate against `ref` on the first `n_tokens` of `text` (whole chunks).

    `ref` and `cands` are backend models with tokenize and next_token_logits
    (leeroo_local.backends.llama_cpp.LlamaCppModel); all are evaluated in lockstep, batch by
    batch, so the reference runs once however many candidates there are.
    """
    from ..errors import QuantizationError

    tokens = ref.tokenize(text, add_bos=False)
    for c in cands:
        if c.tokenize(text, add_bos=False) != tokens or c.n_vocab != ref.n_vocab:
            raise QuantizationError(f"{c.path.name} tokenizes the sample differently from "
                                    f"{ref.path.name}: not quantizations of the same model")
    prefix = ref.tokenize("", add_bos=True)
    parts = chunks(tokens, n_ctx, prefix)[: max(1, n_tokens // n_ctx)]
    if not parts or len(parts[0]) < n_ctx:
        raise QuantizationError(f"the sample holds {len(tokens)} tokens, fewer than one "
                                f"{n_ctx}-token chunk")
    stats = [TokenStats() for _ in cands]
    first = n_ctx // 2
    for chunk in parts:
        streams = [m.next_token_logits(chunk, first=first) for m in [ref, *cands]]
        for (i, ref_rows), *others in zip(*streams):
            rows = min(len(ref_rows), len(chunk) - 1 - i)  # the last row has no next token
            targets = np.asarray(chunk[i + 1:i + 1 + rows])
            for st, (_, cand_rows) in zip(stats, others):
                _reduce(ref_rows[:rows], cand_rows[:rows], targets, st)
    return stats


@dataclass(frozen=True)
class MCQuestion:
    id: str
    text: str
    options: list[str]
    answer: str


def mc_questions(n: int, seed: int = 0, max_question: int = 300,
                 max_option: int = 40) -> list[MCQuestion]:
    """`n` short MMLU-Pro development questions, a seeded draw (the same for every run)."""
    folder = resources.files("leeroo_local").joinpath("data", "mmlu_pro_dev", "questions.jsonl.gz")
    with gzip.open(str(folder), "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    pool = [MCQuestion(str(r["id"]), r["question"], list(r["options"]), str(r["answer"]))
            for r in rows if len(r["question"]) <= max_question and r.get("options")
            and max(map(len, r["options"])) <= max_option]
    pool.sort(key=lambda q: q.id)
    random.Random(seed).shuffle(pool)
    return pool[:n]


def mc_choice(model, q: MCQuestion) -> int:
    """Index of the option with the highest length-normalised log-likelihood."""
    conts = [" " + o for o in q.options]
    ll = model.loglikelihoods(mc_prompt(q.text, q.options), conts)
    values = [v / max(1, len(c)) for v, c in zip(ll, conts)]
    return max(range(len(values)), key=values.__getitem__)


def fits(model, q: MCQuestion, margin: int = 4) -> bool:
    longest = max(q.options, key=len)
    return len(model.tokenize(mc_prompt(q.text, q.options) + " " + longest)) + margin < model.info.n_ctx


@dataclass
class MCResult:
    """Picks of the reference and of each candidate on the questions they all could hold."""

    questions: list[str]
    answers: list[int]
    reference: list[int]
    candidates: list[list[int]]

    def summary(self, k: int) -> dict:
        n = len(self.questions)
        ref, cand, ans = self.reference, self.candidates[k], self.answers
        return {
            "mc_questions": n,
            "mc_agreed": sum(a == b for a, b in zip(ref, cand)),
            "mc_agreement": sum(a == b for a, b in zip(ref, cand)) / n if n else None,
            "mc_accuracy_reference": sum(a == b for a, b in zip(ref, ans)) / n if n else None,
            "mc_accuracy_candidate": sum(a == b for a, b in zip(cand, ans)) / n if n else None,
        }


def compare_choices(ref, cands: list, n: int, seed: int = 0) -> MCResult:
    """Each model's pick on up to `n` questions (those whose prompt fits every context)."""
    qs = [q for q in mc_questions(n, seed) if all(fits(m, q) for m in [ref, *cands])]
    return MCResult(
        questions=[q.id for q in qs],
        answers=[LETTERS.index(q.answer) if q.answer in LETTERS else -1 for q in qs],
        reference=[mc_choice(ref, q) for q in qs],
        candidates=[[mc_choice(c, q) for q in qs] for c in cands],
    )
