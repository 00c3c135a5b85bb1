"""What a self-play round reports (stored with the round, printed by the CLI and the bench)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class RetrainResult(BaseModel):
    """The retrain step of a round: what was trained and which policy is in use after it."""

    action: str = Field(description="accepted (the new policy is in use), kept (the previous "
                        "one is at least as good on validation), skipped (with the reason), or "
                        "none (no policy step).")
    detail: str = Field(default="", description="Why, in words.")
    validation_accuracy: float | None = Field(
        default=None, description="Accuracy on the validation set of the policy in use after "
        "the round (routing to the expert it predicts best).")
    candidate_accuracy: float | None = Field(
        default=None, description="Accuracy of the policy trained this round, kept or not.")
    previous_accuracy: float | None = Field(
        default=None, description="Accuracy of the policy in use before the round.")
    training_questions: int = Field(default=0, description="Questions the candidate saw.")
    policy_path: str | None = Field(default=None, description="Folder of the policy in use.")
    seconds: float = Field(default=0.0, description="Training and validation time.")
    energy_j: float = Field(default=0.0, description="Energy of training and validation.")


class RoundReport(BaseModel):
    """One round: its questions, what was run, the signal they carry, and the retrain."""

    number: int = Field(description="Round number (1, 2, ...); 0 is the validation set.")
    source: str = Field(description="Where the questions came from (dataset:..., generator:...).")
    evaluator: str = Field(description="loglik, extract or judge.")
    questions: int = Field(description="Questions in the round.")
    rejected: int = Field(default=0, description="Generated questions rejected as malformed.")
    scored: int = Field(description="Outcomes stored.")
    unscorable: int = Field(description="Answers that could not be scored (nothing stored).")
    failed: int = Field(description="Evaluations that failed (e.g. context overflow).")
    chosen_by: dict[str, int] = Field(description="Tasks by how the expert was chosen: all, "
                                      "policy, prior, explore.")
    compared: int = Field(description="Questions with at least two scores.")
    high_signal: int = Field(description="Compared questions on which the experts disagree.")
    signal_share: float | None = Field(description="high_signal / compared.")
    retrain: RetrainResult = Field(description="The retrain step.")
    seconds: float = Field(description="Compute time: generation, evaluations (loads "
                           "included) and retraining, summed over resumptions.")
    energy_j: float = Field(description="Energy of the same work.")
    energy_method: str = Field(description="measured (RAPL/NVML) or estimated (CPU time x W).")
    resumed: bool = Field(default=False, description="The round was continued after a stop.")
