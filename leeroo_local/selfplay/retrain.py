"""The retrain step of a round: train a policy on the store, judge it on the fixed validation
set, and keep it only if it is at least as accurate there as the policy in use.

Accuracy on validation = the mean outcome of the member the policy predicts best, for each
validation question (among the members with an outcome on it). The policy in use is the user's
self-play policy (paths.policies_dir()/selfplay, which the service routes with once it exists),
else what Settings.policy resolves to (a shipped policy), else none: routing to the first member.
Keeping the previous policy when a retrain is worse makes the reported accuracy non-decreasing
over rounds by construction; the candidate's own accuracy is reported beside it, so a retrain
that did not help is visible, not hidden.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
from sqlite_utils import Database

from .. import paths
from ..catalog import Catalog
from ..errors import DataError
from ..hardware import EnergyMeter
from ..fit.outcome_sources import training_matrix
from ..store.outcomes import column_name
from ..settings import Settings
from ..store import rounds as store
from ..universe import Universe
from .report import RetrainResult
from .sources import Question

USER_POLICY = "selfplay"


def user_policy_dir() -> Path:
    return paths.policies_dir() / USER_POLICY


class PolicyStep:
    """Retrains the universe's routing policy after each round (numpy + onnx, in process)."""

    def __init__(self, settings: Settings, universe: Universe, catalog: Catalog,
                 folder: Path | None = None, seed: int = 0):
        self.settings = settings
        self.universe = universe
        self.catalog = catalog
        self.folder = Path(folder) if folder else user_policy_dir()
        self.seed = seed
        self._bound = None  # (folder, UniverseRouter) of the policy in use

    # -- the policy in use -----------------------------------------------------------------

    def current_folder(self) -> Path | None:
        from ..policy.labels import LABELS_FILE
        from ..policy.shipped import resolve_policy

        if (self.folder / LABELS_FILE).is_file():
            return self.folder
        return resolve_policy(self.settings.policy, self.universe.ids())

    def _router(self, folder: Path | None):
        """The policy at `folder` bound to the universe's members (None: no policy)."""
        if folder is None:
            return None
        if self._bound is not None and self._bound[0] == folder:
            return self._bound[1]
        from ..policy import load_policy
        from ..runtime.routing import UniverseRouter

        policy = load_policy(folder)
        bound = UniverseRouter(policy, policy.labels.name, self.universe, self.catalog,
                               quants=policy.labels.quants)
        bound = bound if bound.covers_any else None
        self._bound = (folder, bound)
        return bound

    def scores(self, question: Question, members) -> dict[str, float] | None:
        """The policy in use's predicted score per member (exploration's ranking)."""
        router = self._router(self.current_folder())
        if router is None:
            return None
        s = router.scores(_text(question.text, question.options))
        return {m.expert: float(v) for m, v in zip(router.members, s)}

    # -- validation ------------------------------------------------------------------------

    def validation(self, db: Database, members) -> tuple[list[Question], np.ndarray]:
        """The validation questions and their outcomes [questions x members] (NaN: none)."""
        row = store.get_round(db, "validation", 0)
        if row is None:
            return [], np.zeros((0, len(members)))
        ids = store.question_ids(db, row["id"])
        index = {q: i for i, q in enumerate(ids)}
        cols = {(m.expert, m.quant): j for j, m in enumerate(members)}
        S = np.full((len(ids), len(members)), np.nan)
        for t in store.tasks(db, row["id"], store.SCORED):
            j = cols.get((t.expert, t.quant))
            if j is not None:
                S[index[t.question_id], j] = t.score
        rows = {r["id"]: r for r in db.query(
            f"SELECT * FROM questions WHERE id IN ({', '.join('?' * len(ids))})", ids)}
        qs = [Question(id=q, text=rows[q]["text"], options=json.loads(rows[q]["options"] or "[]"),
                       answer=rows[q]["answer"] or "") for q in ids]
        return qs, S

    def accuracy(self, folder: Path | None, questions: list[Question], S: np.ndarray) -> float | None:
        """Mean outcome of the member the policy at `folder` predicts best (no policy: the
        universe's first member), over validation questions with any outcome."""
        observed = ~np.isnan(S)
        keep = observed.any(axis=1)
        if not keep.any():
            return None
        router = self._router(folder)
        picks = []
        for q, ok in zip(questions, observed):
            if not ok.any():
                picks.append(-1)
                continue
            if router is None:
                picks.append(int(np.argmax(ok)))  # first member with an outcome
                continue
            s = router.scores(_text(q.text, q.options))
            picks.append(int(np.argmax(np.where(ok, s, -np.inf))))
        values = [S[i, j] for i, j in enumerate(picks) if j >= 0]
        return float(np.mean(values))

    # -- the step --------------------------------------------------------------------------

    def after_round(self, db: Database, number: int, members, keep: str = "signal") -> RetrainResult:
        """Train on the store's outcomes of the universe's members (validation questions left
        out; with keep='signal' also self-play questions that separated no experts), judge on
        validation, and put the candidate in use only when it is at least as accurate."""
        started = time.perf_counter()
        meter = EnergyMeter(self.settings.sysfs_root, self.settings.watts_per_core,
                            pids=[os.getpid()]).start()
        questions, S = self.validation(db, members)
        current = self.current_folder()
        before = self.accuracy(current, questions, S)
        result = self._train(db, number, members, keep, {q.id for q in questions})
        if isinstance(result, str):
            out = RetrainResult(action="skipped", detail=result, validation_accuracy=before,
                                previous_accuracy=before, policy_path=_str(current))
        else:
            candidate, n = result
            cand_acc = self.accuracy(candidate, questions, S)
            better = before is None or (cand_acc is not None and cand_acc >= before)
            if better:
                self._install(candidate)
                out = RetrainResult(
                    action="accepted", training_questions=n, candidate_accuracy=cand_acc,
                    previous_accuracy=before, validation_accuracy=cand_acc,
                    policy_path=str(self.folder),
                    detail=f"trained on {n} questions; validation {_pct(cand_acc)} >= "
                           f"{_pct(before)} of {_name(current)}")
            else:
                shutil.rmtree(candidate, ignore_errors=True)
                out = RetrainResult(
                    action="kept", training_questions=n, candidate_accuracy=cand_acc,
                    previous_accuracy=before, validation_accuracy=before,
                    policy_path=_str(current),
                    detail=f"trained on {n} questions; validation {_pct(cand_acc)} < "
                           f"{_pct(before)} of {_name(current)}, which stays in use")
        energy = meter.stop()
        return out.model_copy(update={"seconds": time.perf_counter() - started,
                                      "energy_j": energy.joules})

    def _train(self, db: Database, number: int, members, keep: str, validation_ids: set[str]):
        """(candidate folder, questions) or the reason nothing was trained."""
        from ..policy.naming import catalog_names
        from ..policy.train import train_policy

        try:
            matrix = training_matrix(store="all", db=db)
        except DataError as exc:
            return str(exc)
        wanted = {}
        for m in members:
            for col in (column_name(m.stored_as, m.quant), m.stored_as):
                if col in matrix.experts:
                    wanted[col] = m
        if not wanted:
            return "the store has no outcomes of the universe's experts"
        matrix = matrix.select(list(wanted))
        drop = set(validation_ids)
        if keep == "signal":
            drop |= store.low_signal_question_ids(db)
        rows = np.array([i for i, q in enumerate(matrix.question_ids)
                         if q not in drop and not np.isnan(matrix.scores[i]).all()], dtype=int)
        if rows.size == 0:
            return "no training question outside the validation set"
        matrix = matrix.rows(rows)
        filled = [c for j, c in enumerate(matrix.experts) if not np.isnan(matrix.scores[:, j]).all()]
        candidate = self.folder.parent / f".{self.folder.name}-candidate"
        shutil.rmtree(candidate, ignore_errors=True)
        try:
            matrix, rename, costs, unit = catalog_names(matrix.select(filled), self.catalog)
            report = train_policy(matrix, candidate, seed=self.seed, name=USER_POLICY,
                                  rename=rename, costs=costs, cost_unit=unit,
                                  source=f"evaluation store: self-play round {number}")
        except DataError as exc:
            return str(exc)
        return candidate, report.questions

    def _install(self, candidate: Path) -> None:
        """Swap the candidate in place of the user's policy (never half written)."""
        self.folder.parent.mkdir(parents=True, exist_ok=True)
        old = self.folder.parent / f".{self.folder.name}-old"
        shutil.rmtree(old, ignore_errors=True)
        if self.folder.exists():
            self.folder.rename(old)
        candidate.rename(self.folder)
        shutil.rmtree(old, ignore_errors=True)
        self._bound = None


def _text(question: str, options: list[str]) -> str:
    from ..policy.features import prompt_text

    return prompt_text(question, options or None)


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _str(p: Path | None) -> str | None:
    return None if p is None else str(p)


def _name(folder: Path | None) -> str:
    return "routing to the first member" if folder is None else f"policy {folder.name}"
