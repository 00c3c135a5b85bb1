"""A policy folder's labels: everything the ONNX graph's numbers mean, kept next to the graph.

    <policy>/policy.json   PolicyLabels (experts, costs, features, training facts)
    <policy>/vocab.txt     the n-gram vocabulary, one per line, in the graph's input order
    <policy>/policy.onnx   TF-IDF + linear head: (ids, counts) -> one predicted score per expert

No expert name, cost or vocabulary lives in code, so a retrained policy is a new folder only.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from ..errors import DataError

FORMAT = 2  # 2: the graph may also take subword ids (a tokenizer.json beside it)
LABELS_FILE = "policy.json"


class PolicyLabels(BaseModel):
    """What the outputs of a policy's ONNX graph are, and how its inputs are made."""

    format: int = Field(default=FORMAT, description="Version of this folder layout.")
    name: str = Field(description="Short name, e.g. catalog or starter.")
    experts: list[str] = Field(min_length=1, description="Output j is the predicted score of experts[j].")
    quants: list[str | None] = Field(
        description="Quantization each expert's outcomes were measured at; null: full precision."
    )
    columns: list[str] = Field(description="The outcome-data column each expert was trained from.")
    costs: list[float] = Field(description="Cost of each expert in the training data's unit.")
    cost_unit: str = Field(default="active parameters (billions)", description="Unit of `costs`.")
    features: dict = Field(description="FeatureConfig of the tokenizer (features.py).")
    vocab_file: str = Field(default="vocab.txt", description="Vocabulary file, one n-gram a line.")
    onnx_file: str = Field(default="policy.onnx", description="The graph routing runs.")
    model: dict = Field(default_factory=dict, description="Model kind and hyperparameters chosen.")
    training: dict = Field(default_factory=dict, description="Data, sizes and scores of training.")

    def check(self) -> None:
        n = len(self.experts)
        if not (len(self.quants) == len(self.columns) == len(self.costs) == n):
            raise DataError(f"policy {self.name}: experts, quants, columns and costs differ in length")
        if len(set(zip(self.experts, self.quants))) != n:
            raise DataError(f"policy {self.name}: an expert appears twice at the same quantization")


def read_labels(folder: Path) -> PolicyLabels:
    """The labels of a policy folder; DataError when absent or invalid."""
    path = Path(folder) / LABELS_FILE
    if not path.is_file():
        raise DataError(f"{folder}: not a policy folder (no {LABELS_FILE})")
    try:
        labels = PolicyLabels.model_validate_json(path.read_text(encoding="utf-8"))
    except (ValidationError, ValueError) as exc:
        raise DataError(f"{path}: invalid policy labels: {exc}") from None
    if labels.format > FORMAT:
        raise DataError(f"{path}: policy format {labels.format} is newer than this leeroo-local")
    labels.check()
    return labels


def write_labels(folder: Path, labels: PolicyLabels) -> Path:
    labels.check()
    path = Path(folder) / LABELS_FILE
    path.write_text(labels.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return path


def read_vocab(folder: Path, labels: PolicyLabels) -> list[str]:
    path = Path(folder) / labels.vocab_file
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DataError(f"{path}: cannot read the policy's vocabulary: {exc}") from None
    return text.split("\n")[:-1] if text else []


def write_vocab(folder: Path, vocab: list[str], labels: PolicyLabels) -> None:
    # n-grams never hold a newline (the tokenizer splits on whitespace), so one per line is safe.
    (Path(folder) / labels.vocab_file).write_text("".join(g + "\n" for g in vocab), encoding="utf-8")
