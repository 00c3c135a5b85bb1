"""`leeroo-local quant eval REFERENCE CANDIDATE`: measure a quantization, store the measurement.

Both files are loaded in this process with llama.cpp and compared on the shipped text sample
(perplexity of each, mean KL(ref || cand), top-1 agreement) and on MMLU-Pro questions (picks,
agreement, accuracy). Several candidates can share one pass of the reference (the bench does).
"""

from __future__ import annotations

import time
from pathlib import Path

from pydantic import BaseModel, Field

from .. import paths
from ..catalog import Catalog
from ..errors import QuantizationError
from ..gguf_info import read_gguf
from .measure import compare_choices, compare_next_tokens, sample_path
from .resolve import Located, locate
from .types import file_precision

MC_CTX = 1024  # context for the multiple-choice prompts (question, options, answer)


class FileFacts(BaseModel):
    """One side of a measurement: the file and what the catalog knows it as."""

    path: str = Field(description="Absolute path of the GGUF file.")
    size_bytes: int = Field(description="Bytes on disk.")
    sha256: str = Field(description="SHA-256 of the file.")
    type: str = Field(description="Quantization read from the file's header.")
    expert: str | None = Field(default=None, description="Catalog expert, when the file is one's.")
    quant: str | None = Field(default=None, description="Catalog quantization, when known.")


class QuantEval(BaseModel):
    """What a quantization changes, measured against a reference file of the same model."""

    id: int | None = Field(default=None, description="Row id in the store's quant_measurements.")
    reference: FileFacts = Field(description="The file measured against.")
    candidate: FileFacts = Field(description="The file measured.")
    sample: str = Field(description="Text sample the next-token numbers come from.")
    n_ctx: int = Field(description="Chunk size; the second half of each chunk is scored.")
    tokens_scored: int = Field(description="Positions scored (next-token predictions).")
    ppl_reference: float = Field(description="Perplexity of the reference on the sample.")
    ppl_candidate: float = Field(description="Perplexity of the candidate on the sample.")
    kl_mean: float = Field(description="Mean KL(reference || candidate) per position, nats.")
    kl_p99: float = Field(description="99th percentile of the per-position KL, nats.")
    kl_max: float = Field(description="Largest per-position KL, nats.")
    top1_agreement: float = Field(description="Share of positions where both top tokens agree.")
    mc_questions: int = Field(description="MMLU-Pro questions both could hold in context.")
    mc_agreed: int = Field(description="Questions where both picked the same option.")
    mc_agreement: float | None = Field(description="mc_agreed / mc_questions.")
    mc_accuracy_reference: float | None = Field(description="Reference's share of right picks.")
    mc_accuracy_candidate: float | None = Field(description="Candidate's share of right picks.")
    seconds: float = Field(description="Wall time of the whole measurement.")
    backend: str = Field(description="llama-cpp-python version that ran both models.")

    def row(self) -> dict:
        """The store row (m004_create_quant_measurements)."""
        data = self.model_dump(exclude={"id", "reference", "candidate"})
        r, c = self.reference, self.candidate
        return {**data, "expert": c.expert, "quant": c.quant, "reference_expert": r.expert,
                "reference_quant": r.quant, "candidate_path": c.path, "candidate_bytes": c.size_bytes,
                "candidate_sha256": c.sha256, "candidate_type": c.type, "reference_path": r.path,
                "reference_bytes": r.size_bytes, "reference_sha256": r.sha256,
                "reference_type": r.type}


def _facts(found: Located) -> FileFacts:
    info = read_gguf(found.path)
    return FileFacts(path=str(found.path.resolve()), size_bytes=found.path.stat().st_size,
                     sha256=paths.sha256_file(found.path), type=file_precision(info),
                     expert=found.expert, quant=found.quant)


def same_model(reference: Path, candidate: Path) -> None:
    """QuantizationError unless both headers describe the same architecture and tensors."""
    a, b = read_gguf(reference), read_gguf(candidate)
    shape_a = {t.name: t.shape for t in a.tensors}
    shape_b = {t.name: t.shape for t in b.tensors}
    if a.architecture != b.architecture or shape_a != shape_b:
        differ = sorted(n for n in shape_a.keys() | shape_b.keys() if shape_a.get(n) != shape_b.get(n))
        detail = (f"architectures {a.architecture} and {b.architecture}" if a.architecture != b.architecture
                  else f"tensors differ ({', '.join(differ[:3])}{', ...' if len(differ) > 3 else ''})")
        raise QuantizationError(f"{candidate.name} is not a quantization of the same model as "
                                f"{reference.name}: {detail}")


def evaluate(
    catalog: Catalog, reference: str, candidates: list[str], *, tokens: int = 1024,
    questions: int = 40, n_ctx: int = 512, seed: int = 0, threads: int | None = None,
    db=None,
) -> list[QuantEval]:
    """Measure each candidate against `reference` (ids, id@QUANT or paths); stored when `db`.

    `threads`: llama.cpp threads for single tokens and batches alike (default: the runtime's
    default_threads(), half the logical cores). Not llama-cpp-python's all-cores default for
    batches: on a busy 2-core machine here, 1 thread ran this 4-6x faster than 2 (ggml's
    spinning barriers collapse when cores are oversubscribed).
    """
    from ..backends.llama_cpp import LlamaCppModel, backend_version, default_threads

    started = time.perf_counter()
    ref_at = locate(catalog, reference)
    cand_at = [locate(catalog, c) for c in candidates]
    for c in cand_at:
        if c.path.resolve() == ref_at.path.resolve():
            raise QuantizationError(f"{c.path} is the reference itself")
        same_model(ref_at.path, c.path)
    if tokens < n_ctx:
        raise QuantizationError(f"--tokens {tokens} is less than one {n_ctx}-token chunk")
    text = sample_path().read_text(encoding="utf-8")
    ctx = max(n_ctx, MC_CTX if questions else 0)
    threads = threads or default_threads()
    models = [LlamaCppModel(f.path, n_ctx=ctx, n_threads=threads, n_threads_batch=threads)
              for f in [ref_at, *cand_at]]
    try:
        stats = compare_next_tokens(models[0], models[1:], text, tokens, n_ctx)
        picks = compare_choices(models[0], models[1:], questions, seed) if questions else None
    finally:
        for m in models:
            m.close()
    seconds = time.perf_counter() - started
    ref_facts = _facts(ref_at)
    out = []
    for k, (found, st) in enumerate(zip(cand_at, stats)):
        mc = picks.summary(k) if picks else {
            "mc_questions": 0, "mc_agreed": 0, "mc_agreement": None,
            "mc_accuracy_reference": None, "mc_accuracy_candidate": None}
        result = QuantEval(reference=ref_facts, candidate=_facts(found), sample=sample_path().name,
                           n_ctx=n_ctx, seconds=seconds, backend=f"llama-cpp-python {backend_version()}",
                           **st.summary(), **mc)
        if db is not None:
            from ..store.quant_measurements import record_measurement

            result.id = record_measurement(db, result.row())
        out.append(result)
    return out
