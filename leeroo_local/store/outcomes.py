"""Outcome matrices: how well each expert answered each question, loaded from a data folder.

The folder format is that of the MMLU-Pro development data (questions.jsonl.gz,
outcomes.csv.gz, experts.csv). Scores may be 0/1 or fractions in [0, 1]; an empty cell means
the expert was not run on that question and is kept as NaN, never as a 0.

A column is an expert's outcomes at full precision, or, named `<expert>@<QUANT>` (e.g.
`Meta-Llama-3_1-8B@Q4_K_M`), measured at one quantization; `column_name` and `split_column`
convert between the two forms.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from ..errors import DataError


QUANT_SEP = "@"


def column_name(expert: str, quant: str | None = None) -> str:
    """The outcome column of `expert`, at `quant` when the outcomes were measured quantized."""
    return f"{expert}{QUANT_SEP}{quant.upper()}" if quant else expert


def split_column(column: str) -> tuple[str, str | None]:
    """(expert, quant or None) from a column name made by `column_name`."""
    expert, sep, quant = column.rpartition(QUANT_SEP)
    return (expert, quant) if sep and expert and quant else (column, None)


@dataclass(frozen=True)
class ExpertInfo:
    """A row of experts.csv; cost defaults to active parameters in billions."""

    name: str
    params_b: float | None = None
    active_params_b: float | None = None
    kind: str = ""
    instruct: bool | None = None
    family: str = ""


@dataclass
class OutcomeMatrix:
    """scores[i, j] is expert j's outcome on question i (NaN where missing)."""

    question_ids: list[str]
    experts: list[str]
    scores: np.ndarray
    info: dict[str, ExpertInfo] = field(default_factory=dict)
    questions: dict[str, dict] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.scores.shape != (len(self.question_ids), len(self.experts)):
            raise DataError(
                f"scores shape {self.scores.shape} does not match "
                f"{len(self.question_ids)} questions x {len(self.experts)} experts"
            )

    def select(self, experts: list[str] | None = None, kind: str | None = None) -> OutcomeMatrix:
        """A matrix restricted to some experts (by name, or by kind in experts.csv)."""
        names = list(experts) if experts else list(self.experts)
        if kind:
            names = [n for n in names if self.info.get(n, ExpertInfo(n)).kind == kind]
        missing = [n for n in names if n not in self.experts]
        if missing:
            raise DataError(f"experts not in the data: {', '.join(missing)}")
        cols = [self.experts.index(n) for n in names]
        return OutcomeMatrix(
            self.question_ids, names, self.scores[:, cols], self.info, self.questions
        )

    def rows(self, index: np.ndarray) -> OutcomeMatrix:
        """A matrix restricted to some questions (for splits and folds)."""
        ids = [self.question_ids[i] for i in index]
        return OutcomeMatrix(ids, self.experts, self.scores[index], self.info, self.questions)

    def costs(self, default: float = 1.0) -> np.ndarray:
        """Per-expert cost: active parameters in billions, `default` where unknown."""
        return np.array(
            [
                (self.info.get(n) and self.info[n].active_params_b) or default
                for n in self.experts
            ],
            dtype=np.float64,
        )

    def filled(self, value: float = 0.0) -> np.ndarray:
        """Scores with missing cells replaced (for objectives that need a number everywhere)."""
        return np.nan_to_num(self.scores, nan=value)


def default_data_dir() -> Path:
    """The MMLU-Pro development outcomes shipped with the package."""
    return Path(str(resources.files("leeroo_local").joinpath("data", "mmlu_pro_dev")))


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return path.open(encoding="utf-8")


def _find(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.exists():
            return candidate
    return None


def _cell(text: str, where: str) -> float:
    text = text.strip()
    if text == "":
        return np.nan
    try:
        value = float(text)
    except ValueError:
        raise DataError(f"{where}: not a score: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise DataError(f"{where}: score {value} is outside [0, 1]")
    return value


def read_outcomes(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    """question ids, expert names and the score matrix from outcomes.csv(.gz)."""
    try:
        with _open_text(path) as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if not header or header[0] != "question_id" or len(header) < 2:
                raise DataError(f"{path}: header must be question_id,<expert>,...")
            experts = [h.strip() for h in header[1:]]
            ids: list[str] = []
            rows: list[list[float]] = []
            for lineno, row in enumerate(reader, start=2):
                if not row:
                    continue
                if len(row) != len(header):
                    raise DataError(f"{path}:{lineno}: {len(row)} cells, header has {len(header)}")
                ids.append(row[0])
                rows.append([_cell(c, f"{path}:{lineno}") for c in row[1:]])
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read: {exc}") from None
    if len(set(ids)) != len(ids):
        raise DataError(f"{path}: duplicate question ids")
    return ids, experts, np.array(rows, dtype=np.float32).reshape(len(ids), len(experts))


def read_experts(path: Path) -> dict[str, ExpertInfo]:
    """experts.csv rows keyed by model name; numeric columns may be empty."""

    def num(text: str | None) -> float | None:
        try:
            return float(text) if text not in (None, "") else None
        except ValueError:
            raise DataError(f"{path}: not a number: {text!r}") from None

    with path.open(encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or "model" not in reader.fieldnames:
            raise DataError(f"{path}: needs a 'model' column")
        out = {}
        for row in reader:
            instruct = row.get("instruct")
            out[row["model"]] = ExpertInfo(
                name=row["model"],
                params_b=num(row.get("params_b")),
                active_params_b=num(row.get("active_params_b")),
                kind=row.get("kind") or "",
                instruct=None if instruct in (None, "") else instruct.lower() in ("yes", "true", "1"),
                family=row.get("family") or "",
            )
    return out


def read_questions(path: Path) -> dict[str, dict]:
    """Question records keyed by id; only `id` and `question` are required."""
    out: dict[str, dict] = {}
    try:
        with _open_text(path) as fh:
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path}:{lineno}: invalid JSON: {exc.msg}") from None
                if "id" not in rec or "question" not in rec:
                    raise DataError(f"{path}:{lineno}: a question needs 'id' and 'question'")
                out[str(rec["id"])] = rec
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read: {exc}") from None
    return out


def load_matrix(folder: str | Path | None = None, with_questions: bool = True) -> OutcomeMatrix:
    """Load a data folder (default: the shipped MMLU-Pro development outcomes)."""
    folder = Path(folder) if folder else default_data_dir()
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder")
    outcomes = _find(folder, "outcomes.csv")
    if outcomes is None:
        raise DataError(f"{folder}: no outcomes.csv(.gz)")
    ids, experts, scores = read_outcomes(outcomes)
    experts_csv = folder / "experts.csv"
    info = read_experts(experts_csv) if experts_csv.exists() else {}
    questions: dict[str, dict] = {}
    qpath = _find(folder, "questions.jsonl")
    if with_questions and qpath is not None:
        questions = read_questions(qpath)
    return OutcomeMatrix(ids, experts, scores, info, questions)
