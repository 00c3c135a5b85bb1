"""Which outcomes a fit or a policy is trained on, and the degradation model a fit scales by.

One place for the choice, so that `fit`, `policy train` and self-play (onboarding, retraining)
read the same data the same way: an outcome folder, the shipped MMLU-Pro outcomes, or the
evaluation store (some sources, or all).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlite_utils import Database

from ..degradation import DegradationModel
from ..errors import DataError
from ..store.outcomes import OutcomeMatrix, default_data_dir, load_matrix

SHIPPED_LABEL = "shipped MMLU-Pro development outcomes"
# The shipped outcome sources `fit` chooses over by default, by the name `fit --data` takes:
# (folder under leeroo_local/data, label for the report).
SHIPPED_SOURCES = {
    "mmlu-pro": ("mmlu_pro_dev", SHIPPED_LABEL),
    "llmrouter": ("llmrouter_dev", "shipped mixed-task development outcomes (LLMRouter)"),
}


@dataclass(frozen=True)
class OutcomeSource:
    """One source of outcomes a fit scores on: a name (mmlu-pro, llmrouter, a folder's name),
    a label for the report, and the matrix with its question texts."""

    name: str
    label: str
    matrix: OutcomeMatrix


def shipped_folder(name: str) -> Path:
    """The folder of a shipped source named as `fit --data` names it."""
    return default_data_dir().parent / SHIPPED_SOURCES[name][0]


def fit_sources(data: str | Path | None = None, db: Database | None = None) -> list[OutcomeSource]:
    """The sources a fit chooses over: every shipped source side by side by default; with
    `data`, one shipped source by name (mmlu-pro, llmrouter) or a folder; with `db`, the
    evaluation store (all its sources as one matrix, as before)."""
    if data is not None and db is not None:
        raise DataError("use an outcome folder or the evaluation store, not both")
    if db is not None:
        matrix, label = fit_outcomes(db=db)
        return [OutcomeSource("store", label, matrix)]
    if data is None:
        return [OutcomeSource(name, label, load_matrix(shipped_folder(name), with_questions=True))
                for name, (_, label) in SHIPPED_SOURCES.items()]
    if str(data) in SHIPPED_SOURCES:
        name = str(data)
        return [OutcomeSource(name, SHIPPED_SOURCES[name][1],
                              load_matrix(shipped_folder(name), with_questions=True))]
    folder = Path(data)
    if not folder.is_dir():
        raise DataError(f"--data {data}: neither a folder nor a shipped source "
                        f"({', '.join(SHIPPED_SOURCES)})")
    return [OutcomeSource(folder.name, str(folder), load_matrix(folder, with_questions=True))]


def placement_source(sources: list[OutcomeSource]) -> OutcomeSource:
    """The one source `fit --host` places by: the only one, else the mixed-task data (the kinds
    of work people bring; its experts are today's instruct models)."""
    return sources[0] if len(sources) == 1 else next(
        (s for s in sources if s.name == "llmrouter"), sources[0])


def fit_outcomes(data: Path | None = None, db: Database | None = None) -> tuple[OutcomeMatrix, str]:
    """The outcomes a fit chooses on, with their question texts (the router reads them), and a
    label for the report: the store's (all sources) with `db`, else the folder `data`, else the
    shipped outcomes. The store is never merged into a folder's outcomes."""
    if data is not None and db is not None:
        raise DataError("use an outcome folder or the evaluation store, not both")
    if db is not None:
        from ..store.evaluations import read_matrix

        return read_matrix(db, with_questions=True), "evaluation store"
    return load_matrix(data, with_questions=True), str(data) if data else SHIPPED_LABEL


def fit_degradation(db: Database | None = None) -> DegradationModel | None:
    """The degradation model calibrated by the store's `quant eval` measurements; without `db`,
    the user's store when it exists (None, the default table, when there is none: a fit never
    creates the store)."""
    from .. import paths
    from ..store import open_db
    from ..store.quant_measurements import degradation_model

    if db is None:
        if not paths.db_path().exists():
            return None
        db = open_db()
    return degradation_model(db)


def training_matrix(data: Path | None = None, store: str | None = None,
                    db: Database | None = None) -> OutcomeMatrix:
    """The outcomes a policy is trained on: the folder `data`, or the evaluation store's rows of
    the sources `store` names (comma-separated, or "all"; shipped ones are imported on first
    use). `db` is the store to read (default: the user's)."""
    if (data is None) == (store is None):
        raise DataError("give exactly one of --data DIR or --store SOURCE")
    if data is not None:
        return load_matrix(data)
    from ..store import open_db
    from ..store.evaluations import ensure_source, read_matrix

    db = db if db is not None else open_db()
    sources = None if store == "all" else [s.strip() for s in store.split(",") if s.strip()]
    for source in sources or []:
        ensure_source(db, source)  # shipped outcomes (e.g. starter-mmlu-pro) on first use
    return read_matrix(db, sources)
