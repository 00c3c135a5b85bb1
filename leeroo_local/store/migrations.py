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


Migration = Callable[[Database], None]
MIGRATIONS: list[Migration] = [
    m001_create_questions,
    m002_create_outcomes,
]
