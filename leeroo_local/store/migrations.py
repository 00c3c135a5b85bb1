"""The store's schema as named, append-only migrations, applied in this order by `open_db`.

To change the schema, append a function `mNNN_verb_noun(db)` to MIGRATIONS; never edit or
reorder one that has shipped, since databases record the names they have applied.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlite_utils import Database


def m001_create_questions(db: Database) -> None:
    """Questions that outcomes refer to; ids are unique across sources (prefix new sources' ids)."""
    db["questions"].create(
        {"id": str, "text": str, "options": str, "answer": str, "category": str,
         "origin": str, "source": str},
        pk="id", not_null={"text"},
    )


def m002_create_outcomes(db: Database) -> None:
    """How well an expert (at a quantization, or full precision when quant is NULL) answered."""
    db["outcomes"].create(
        {"id": int, "question_id": str, "expert": str, "quant": str, "score": float,
         "source": str, "round": int, "evaluator": str, "created_at": str},
        pk="id", not_null={"question_id", "expert", "score", "source", "created_at"},
    )
    db["outcomes"].create_index(["source"])
    db["outcomes"].create_index(["question_id", "expert", "quant"])


def m003_create_requests(db: Database) -> None:
    """Every request the runtime served or failed: route, measurements, energy, error."""
    db["requests"].create(
        {"id": int, "created_at": str, "client": str, "kind": str, "conversation": str,
         "prompt": str, "messages": str, "response": str, "expert": str, "quant": str,
         "route_reason": str, "route_scores": str, "route_s": float, "load_s": float,
         "ttft_s": float, "total_s": float, "tokens_per_s": float, "prompt_tokens": int,
         "completion_tokens": int, "energy_j": float, "energy_method": str,
         "finish_reason": str, "error": str},
        pk="id", not_null={"created_at", "kind"},
    )
    db["requests"].create_index(["created_at"])
    db["requests"].create_index(["conversation"])


def m004_create_quant_measurements(db: Database) -> None:
    """What `leeroo-local quant eval` measured: a candidate file against a reference file of the
    same model, with the provenance of both (path, size, SHA-256, expert and quant if known)."""
    db["quant_measurements"].create(
        {"id": int, "created_at": str, "expert": str, "quant": str, "reference_expert": str,
         "reference_quant": str, "candidate_path": str, "candidate_bytes": int,
         "candidate_sha256": str, "candidate_type": str, "reference_path": str,
         "reference_bytes": int, "reference_sha256": str, "reference_type": str,
         "sample": str, "n_ctx": int, "tokens_scored": int, "ppl_reference": float,
         "ppl_candidate": float, "kl_mean": float, "kl_p99": float, "kl_max": float,
         "top1_agreement": float, "mc_questions": int, "mc_agreed": int, "mc_agreement": float,
         "mc_accuracy_reference": float, "mc_accuracy_candidate": float, "seconds": float,
         "backend": str},
        pk="id", not_null={"created_at", "candidate_path", "candidate_type", "reference_path",
                           "reference_type", "tokens_scored"},
    )
    db["quant_measurements"].create_index(["expert", "quant"])


def m005_add_selfplay_provenance(db: Database) -> None:
    """Self-play's provenance and state. Outcomes gain who wrote the question (generator), who
    graded the answer (judge) and how the expert was chosen for it (chosen_by: all, policy,
    prior, explore, onboard); questions gain their generator. A round's plan (its questions and
    which experts answer each) is written before any evaluation and each task is marked as it
    is scored, so an interrupted round resumes where it stopped."""
    db["outcomes"].add_column("generator", str)
    db["outcomes"].add_column("judge", str)
    db["outcomes"].add_column("chosen_by", str)
    db["questions"].add_column("generator", str)
    db["selfplay_rounds"].create(
        {"id": int, "kind": str, "number": int, "status": str, "source": str, "evaluator": str,
         "judge": str, "generator": str, "seed": int, "config": str, "questions": int,
         "rejected": int, "started_at": str, "finished_at": str, "retrain_s": float,
         "signal_share": float, "validation_accuracy": float, "candidate_accuracy": float,
         "policy_action": str, "policy_path": str, "report": str},
        pk="id", not_null={"kind", "number", "status", "started_at"},
    )
    db["selfplay_rounds"].create_index(["kind", "number"], unique=True)
    db["selfplay_questions"].create(
        {"round_id": int, "question_id": str, "position": int, "spread": float, "signal": int},
        pk=("round_id", "question_id"), foreign_keys=[("round_id", "selfplay_rounds", "id")],
    )
    db["selfplay_tasks"].create(
        {"id": int, "round_id": int, "question_id": str, "expert": str, "stored_as": str,
         "quant": str, "chosen_by": str, "status": str, "score": float, "outcome_id": int,
         "seconds": float, "energy_j": float, "energy_method": str, "error": str,
         "done_at": str},
        pk="id", not_null={"round_id", "question_id", "expert", "status"},
        foreign_keys=[("round_id", "selfplay_rounds", "id")],
    )
    db["selfplay_tasks"].create_index(["round_id", "question_id", "expert", "quant"], unique=True)
    db["selfplay_tasks"].create_index(["round_id", "status"])


Migration = Callable[[Database], None]
def m006_add_fallback_privacy(db: Database) -> None:
    """Requests gain the experts they fell back from (JSON: expert, quant, error) and why the
    prompt was kept on this machine (the privacy rule; empty when it was free to leave)."""
    db["requests"].add_column("fallback", str)
    db["requests"].add_column("privacy", str)


MIGRATIONS: list[Migration] = [
    m001_create_questions,
    m002_create_outcomes,
    m003_create_requests,
    m004_create_quant_measurements,
    m005_add_selfplay_provenance,
    m006_add_fallback_privacy,
]
