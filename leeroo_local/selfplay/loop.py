"""The self-play loop: draw or generate questions, choose experts, evaluate, store, retrain.

Each round is planned whole (its questions and which experts answer each) and written to the
store before anything runs; each outcome is written as soon as it is scored. A run stopped at
any point loses nothing: the next run finishes the unfinished round first (with the settings it
was started with), and that round counts among the `rounds` asked for.

A fixed validation set (round 0) is drawn once from the dataset, run on every expert of the
universe, and never trained on; the policy step judges each retrained policy on it.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlite_utils import Database

from ..errors import DataError, LeerooError
from ..fit.plan import outcome_name
from ..store.outcomes import column_name, default_data_dir, split_column
from ..runtime.service import Service
from ..store import rounds as store
from ..store.evaluations import SHIPPED_FOLDERS, Outcome, ensure_source
from . import exploration, signal
from .config import SelfPlayConfig
from .report import RetrainResult, RoundReport
from .runner import check_evaluator, evaluate_measured
from .sources import DatasetSource, GeneratorSource, Question

SOURCE_PREFIX = "selfplay/"
VALIDATION_SOURCE = SOURCE_PREFIX + "validation"


@dataclass(frozen=True)
class MemberInfo:
    """A universe member as self-play needs it."""

    expert: str
    quant: str
    stored_as: str  # outcome name (data_column or id)

    @property
    def column(self) -> str:
        return column_name(self.stored_as, self.quant)


@dataclass(frozen=True)
class Event:
    """Progress for the adapters: a stage starts (task None), or a task was evaluated."""

    round: int  # 0: validation
    stage: str  # validation, generating, evaluating, retraining
    done: int
    total: int
    task: store.Task | None = None
    score: float | None = None
    status: str | None = None


class SelfPlay:
    """One self-play run over a service's universe and an evaluation store."""

    def __init__(self, service: Service, db: Database, config: SelfPlayConfig | None = None,
                 policy=None, on_event: Callable[[Event], None] | None = None):
        """`policy`: the retrain step (retrain.PolicyStep), None for rounds without retraining;
        `on_event`: called with progress (the CLI's bars; an exception raised there stops the
        run like an interruption would)."""
        self.service = service
        self.db = db
        self.config = config or SelfPlayConfig()
        self.policy = policy
        self.on_event = on_event or (lambda event: None)
        catalog = service.catalog
        self.members = [MemberInfo(m.expert, m.quant, outcome_name(catalog.get(m.expert)))
                        for m in service.universe.members]
        for name in (self.config.generator, self.config.judge):
            if name:
                catalog.get(name)  # UnknownExpert now, not after a round was planned

    # -- the run ---------------------------------------------------------------------------

    def run(self, rounds: int = 1) -> list[RoundReport]:
        """Finish an interrupted round if there is one, then run new rounds: `rounds` in all."""
        self.import_shipped()
        self.ensure_validation()
        reports = []
        pending = store.unfinished(self.db, "round")
        for _ in range(rounds):
            if pending is not None:
                row, pending, resumed = pending, None, True
            else:
                row, resumed = self._plan_round(store.last_number(self.db, "round") + 1), False
            reports.append(self._finish(row, resumed))
        return reports

    def import_shipped(self) -> list[str]:
        """Put the shipped outcomes of the universe's experts (the data the shipped policies
        were trained on) into the store, once: retraining then builds on them, and neither the
        validation set nor a round draws a question a shipped policy has seen. Returns the
        sources imported now."""
        names = {m.stored_as for m in self.members}
        done = []
        for source, folder in SHIPPED_FOLDERS.items():
            header = _outcome_columns(default_data_dir().parent / folder)
            if names & {split_column(c)[0] for c in header} and ensure_source(self.db, source):
                done.append(source)
        return done

    def ensure_validation(self) -> list[str]:
        """The fixed validation set (drawn on the first run), evaluated on every member of the
        universe (a member added later is evaluated on it now); returns its question ids."""
        if self.config.validation <= 0 and store.get_round(self.db, "validation", 0) is None:
            return []
        row = store.get_round(self.db, "validation", 0)
        if row is None:
            cfg = {**self.config.round_config(), "generator": None, "judge": None}
            if cfg["evaluator"] == "judge":
                cfg["evaluator"] = "loglik"  # the validation set is multiple choice, scored exactly
            source = DatasetSource(self._dataset_path())
            rng = random.Random(f"{self.config.seed}:validation")
            questions = source.draw(self.config.validation, rng, self._seen_ids(any_quant=True),
                                    self.config.max_chars, multiple_choice=True)
            if not questions:
                raise DataError(f"{source.path}: no question left for a validation set (every "
                                "one has outcomes of these experts in the store, so a policy may "
                                "have been trained on it); pass another --source")
            cfg["source"] = source.name
            questions = self._unique(questions)
            plan = [store.PlannedTask(q.id, m.expert, m.stored_as, m.quant, exploration.ALL)
                    for q in questions for m in self.members]
            store.create_round(self.db, "validation", 0, cfg, [_record(q) for q in questions],
                               plan)
            row = store.get_round(self.db, "validation", 0)
        ids = store.question_ids(self.db, row["id"])
        added = store.add_tasks(self.db, row["id"], [
            store.PlannedTask(q, m.expert, m.stored_as, m.quant, exploration.ALL)
            for q in ids for m in self.members])
        if added or row["status"] != "done":
            self.evaluate_round(row, stage="validation")
            store.update_round(self.db, row["id"], status="done")
        return ids

    def _plan_round(self, number: int) -> dict:
        """Draw or generate the round's questions, choose the experts for each, store the plan."""
        cfg = self.config
        rng = random.Random(f"{cfg.seed}:{number}:questions")
        exclude = self._seen_ids()
        rejected, extra = 0, {}
        if cfg.generator:
            self.on_event(Event(number, "generating", 0, cfg.questions))
            source = GeneratorSource(self.service, cfg.generator, max_tokens=max(200, cfg.max_tokens))
            questions = source.draw(cfg.questions, rng, exclude, cfg.max_chars)
            rejected = source.rejected
            why = f"; last error: {source.last_error}" if source.last_error else ""
            extra = {"generate_s": source.seconds, "generate_j": source.energy_j}
        else:
            source = DatasetSource(self._dataset_path())
            check_evaluator(cfg.evaluator)
            questions = source.draw(cfg.questions, rng, exclude, cfg.max_chars,
                                    multiple_choice=cfg.evaluator == "loglik")
        if not questions:
            raise DataError(f"{source.name}: no new question to draw (all were used, or none "
                            f"fits --evaluator {cfg.evaluator} and {cfg.max_chars} characters)"
                            if not cfg.generator else
                            f"{cfg.generator} wrote no valid question ({rejected} rejected{why})")
        questions = self._unique(questions)
        explore_rng = random.Random(f"{cfg.seed}:{number}:explore")
        plan = []
        for q in questions:
            scores = self._policy_scores(q)
            for pick in exploration.choose([m.expert for m in self.members], explore_rng,
                                           cfg.epsilon, scores, cfg.threshold, cfg.top_k):
                m = self._member(pick.expert)
                plan.append(store.PlannedTask(q.id, m.expert, m.stored_as, m.quant,
                                              pick.chosen_by))
        config = {**cfg.round_config(), "source": source.name, **extra}
        store.create_round(self.db, "round", number, config, [_record(q) for q in questions],
                           plan, rejected=rejected)
        return store.get_round(self.db, "round", number)

    def _finish(self, row: dict, resumed: bool) -> RoundReport:
        """Evaluate what is pending, then (once) the signal and the retrain; mark it done."""
        if row["status"] == "evaluating":
            self.evaluate_round(row, stage="evaluating")
            summary, spreads = signal.summarize(self._cells(row["id"]))
            store.set_signal(self.db, row["id"], spreads, signal.HIGH_SIGNAL)
            store.update_round(self.db, row["id"], status="evaluated",
                               signal_share=summary.share)
        self.on_event(Event(row["number"], "retraining", 0, 1))
        retrain = (self.policy.after_round(self.db, row["number"], self.members, self.config.keep)
                   if self.policy is not None else
                   RetrainResult(action="none", detail="no policy step"))
        report = self._report(row, retrain, resumed)
        store.update_round(
            self.db, row["id"], status="done", retrain_s=retrain.seconds,
            validation_accuracy=retrain.validation_accuracy,
            candidate_accuracy=retrain.candidate_accuracy, policy_action=retrain.action,
            policy_path=retrain.policy_path, report=report.model_dump(),
            finished_at=store.now())
        self.on_event(Event(row["number"], "done", 1, 1))
        return report

    # -- evaluation ------------------------------------------------------------------------

    def evaluate_round(self, row: dict, stage: str) -> None:
        """Run the round's pending tasks with the round's own settings, storing each outcome
        as soon as it is scored."""
        cfg = SelfPlayConfig.model_validate(
            {k: v for k, v in row["config"].items() if k in SelfPlayConfig.model_fields})
        todo = store.tasks(self.db, row["id"], store.PENDING)
        total = len(store.tasks(self.db, row["id"]))
        done = total - len(todo)
        questions = self._questions(row["id"])
        self.on_event(Event(row["number"], stage, done, total))
        source = (VALIDATION_SOURCE if row["kind"] == "validation"
                  else SOURCE_PREFIX + (row["source"] or "unknown"))
        for task in todo:
            q = questions[task.question_id]
            error = None
            try:
                ev = evaluate_measured(self.service, task.expert, q, cfg.evaluator, cfg.judge,
                                       cfg.max_tokens, cfg.seed)
            except LeerooError as exc:  # this question on this expert; the round goes on
                ev, error = None, f"{type(exc).__name__}: {exc}"
            if ev is None:
                status, outcome = store.FAILED, None
            elif ev.score is None:
                status, outcome = store.UNSCORABLE, None
            else:
                status = store.SCORED
                outcome = Outcome(
                    question_id=task.question_id, expert=task.stored_as, quant=task.quant,
                    score=ev.score, source=source,
                    round=row["number"] if row["kind"] != "onboard" else None,
                    evaluator=cfg.evaluator, generator=q.generator,
                    judge=(cfg.judge or task.expert) if cfg.evaluator == "judge" else None,
                    chosen_by=task.chosen_by)
            store.complete_task(self.db, task, status, outcome,
                                seconds=ev.seconds if ev else 0.0,
                                energy_j=ev.energy_j if ev else 0.0,
                                energy_method=ev.energy_method if ev else "", error=error)
            done += 1
            self.on_event(Event(row["number"], stage, done, total, task,
                                outcome.score if outcome else None, status))

    def _cells(self, round_id: int) -> dict[str, dict[str, float]]:
        """question -> {column: score} of a round's scored tasks."""
        cells: dict[str, dict[str, float]] = {}
        for t in store.tasks(self.db, round_id):
            cells.setdefault(t.question_id, {})
            if t.status == store.SCORED:
                cells[t.question_id][column_name(t.stored_as, t.quant)] = t.score
        return cells

    # -- helpers ---------------------------------------------------------------------------

    def _report(self, row: dict, retrain: RetrainResult, resumed: bool) -> RoundReport:
        totals = store.totals(self.db, row["id"])
        summary, _ = signal.summarize(self._cells(row["id"]))
        chosen = Counter(t.chosen_by for t in store.tasks(self.db, row["id"]))
        cfg = row["config"]
        methods = set(totals["energy_methods"])
        return RoundReport(
            number=row["number"], source=row["source"] or "", evaluator=row["evaluator"] or "",
            questions=row["questions"], rejected=row["rejected"] or 0,
            scored=totals[store.SCORED], unscorable=totals[store.UNSCORABLE],
            failed=totals[store.FAILED], chosen_by=dict(chosen), compared=summary.compared,
            high_signal=summary.high, signal_share=summary.share, retrain=retrain,
            seconds=totals["seconds"] + cfg.get("generate_s", 0.0) + retrain.seconds,
            energy_j=totals["energy_j"] + cfg.get("generate_j", 0.0) + retrain.energy_j,
            energy_method="measured" if methods == {"measured"} else "estimated",
            resumed=resumed)

    def _policy_scores(self, q: Question) -> dict[str, float] | None:
        """The current policy's prediction per expert (only needed in epsilon-greedy mode)."""
        if len(self.members) <= self.config.threshold or self.policy is None:
            return None
        return self.policy.scores(q, self.members)

    def _member(self, expert: str) -> MemberInfo:
        return next(m for m in self.members if m.expert == expert)

    def _dataset_path(self) -> Path:
        return Path(self.config.source) if self.config.source else (
            default_data_dir() / "questions.jsonl.gz")

    def _seen_ids(self, any_quant: bool = False) -> set[str]:
        """Questions not to draw again: used by any round, or already scored for a member at
        its quantization (e.g. imported outcomes); with `any_quant`, at any quantization (the
        validation set must hold no question any policy of these experts was trained on)."""
        seen = store.planned_question_ids(self.db)
        for m in self.members:
            sql, params = "SELECT DISTINCT question_id FROM outcomes WHERE expert = ?", [m.stored_as]
            if not any_quant:
                sql, params = sql + " AND quant IS ?", [*params, m.quant.upper()]
            seen.update(r[0] for r in self.db.execute(sql, params).fetchall())
        return seen

    def _unique(self, questions: list[Question]) -> list[Question]:
        """Questions whose id the store holds for another text get the source's name prefixed
        (ids are unique across sources)."""
        out = []
        for q in questions:
            row = self.db.execute("SELECT text FROM questions WHERE id = ?", [q.id]).fetchone()
            if row is not None and row[0] != q.text:
                q = Question(**{**q.__dict__, "id": f"{q.source}/{q.id}"})
            out.append(q)
        return out

    def _questions(self, round_id: int) -> dict[str, Question]:
        ids = store.question_ids(self.db, round_id)
        marks = ", ".join("?" * len(ids))
        rows = self.db.execute(f"SELECT id, text, options, answer, category, source, generator "
                               f"FROM questions WHERE id IN ({marks})", ids).fetchall()
        return {r[0]: Question(id=r[0], text=r[1], options=json.loads(r[2] or "[]"),
                               answer=r[3] or "", category=r[4] or "", source=r[5] or "",
                               generator=r[6]) for r in rows}


def _outcome_columns(folder: Path) -> list[str]:
    """The expert columns of a data folder's outcomes.csv(.gz), from its header alone."""
    import gzip

    for name, opener in (("outcomes.csv.gz", gzip.open), ("outcomes.csv", open)):
        if (folder / name).is_file():
            with opener(folder / name, "rt", encoding="utf-8") as fh:
                return fh.readline().strip().split(",")[1:]
    return []


def _record(q: Question) -> dict:
    return {"id": q.id, "text": q.text, "options": q.options, "answer": q.answer,
            "category": q.category, "source": q.source, "generator": q.generator}
