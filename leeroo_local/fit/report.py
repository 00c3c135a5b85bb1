"""What `fit` reports: the chosen universe, what a user can expect from it, and the alternative.

Kept apart from the search (fit_catalog) so the schema that the CLI prints and `--json` dumps is
in one place. Accuracies are fractions; "routed" is the accuracy of the shipped trainer's policy
routing among the members, cross-validated (fit_predictions), "oracle" the paper's S(U).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from ..universe import Member, Universe


class Skipped(BaseModel):
    """A candidate left out before the search, and why."""

    id: str
    quant: str | None = Field(default=None, description="None: every quantization of it.")
    reason: str


class PlanBudget(BaseModel):
    """The budget the plan was made for, in bytes."""

    vram_bytes: int | None
    ram_bytes: int | None
    disk_bytes: int | None
    capacity_bytes: int = Field(description="VRAM + RAM: what all members (resident) or each "
                                            "member (swap) must fit in.")
    max_experts: int | None


class PredictionsUsed(BaseModel):
    """Where the cross-validated predictions of the routed objective came from."""

    source: str = Field(description="shipped, cache or computed.")
    folds: int
    seconds: float
    key: str


class FitMember(BaseModel):
    """One expert of the chosen universe, in greedy order."""

    id: str
    quant: str
    memory_bytes: int
    gain: float = Field(description="What it adds to the objective after the experts above it.")
    score: float = Field(description="The objective with it and the experts above it.")
    data_column: str
    quality: str = Field(description="measured, or the degradation factor applied and its basis.")
    quality_basis: str = Field(
        default="outcomes", description="Where the quality comes from: outcomes (measured at this "
        "quantization), quant eval (this pair measured by `quant eval`), calibrated (the type's "
        "factor calibrated by quant evals), table (the default factor), unquantized.")
    share: float = Field(description="Share of questions the router would send it "
                                     "(cross-validated predictions).")
    oracle_share: float = Field(default=0.0, description="Share of questions it is the first "
                                                         "best expert for (an oracle router).")
    disk_bytes: int
    gpu_bytes: int = Field(description="On the GPU when loaded alone (0 without --vram).")
    cpu_bytes: int = Field(description="In RAM when loaded alone.")
    host: str | None = Field(default=None, description="The host that serves it (fit --host); "
                                                       "None: this machine, no --host given.")


class HostPlan(BaseModel):
    """One host of a placement (fit --host): its budget, what it serves and must pull."""

    name: str
    local: bool = Field(description="This machine.")
    gpu: bool = Field(description="Its budget is GPU memory (GPU compute buffers counted).")
    capacity_bytes: int
    used_bytes: int
    network_penalty: float = Field(description="Accuracy charged per question routed to it "
                                               "(0 for this machine).")
    members: list[str] = Field(description="expert@quant it serves.")
    pull: list[str] = Field(description="Commands to run on it so that its files are there.")


class BestSingle(BaseModel):
    """The best single (expert, quantization) that fits the budget alone."""

    id: str
    quant: str
    memory_bytes: int
    score: float = Field(description="Its accuracy (outcomes x quantization factor).")
    data_column: str


class SourceFit(BaseModel):
    """What the universe is expected to do on one outcome source (fit over several sources)."""

    name: str = Field(description="mmlu-pro, llmrouter, or the folder's name.")
    label: str
    n_questions: int
    routed_score: float | None = Field(description="Routed accuracy on this source's questions "
                                                   "(None: no member has outcomes on it).")
    oracle_score: float | None
    members: list[str] = Field(description="Members with outcomes on this source (expert@quant).")
    best_single: BestSingle | None = Field(description="The best single expert that fits, on "
                                                       "this source alone.")
    predictions: PredictionsUsed


class FitReport(BaseModel):
    """The chosen universe and everything the output shows."""

    experts: list[FitMember]
    total_memory_bytes: int
    total_disk_bytes: int
    objective: Literal["routed", "oracle"] = Field(description="What the greedy maximised.")
    score: float = Field(description="The objective's value: routed_score or oracle_score.")
    routed_score: float = Field(description="Expected accuracy with the shipped router: the "
                                            "policy's cross-validated picks among the members.")
    oracle_score: float = Field(description="S(U): accuracy of an oracle router over the universe.")
    noise: float = Field(description="Two standard errors of the universe's routed lead over "
                                     "the best single expert (paired, per question).")
    recommend: Literal["universe", "single"] = Field(
        description="single when the universe's routed lead is within the noise.")
    best_single: BestSingle
    dropped: list[str] = Field(default_factory=list,
                               description="expert@quant dropped for earning under --min-share.")
    min_share: float = Field(default=0.0, description="Least share of questions a member earns.")
    predictions: PredictionsUsed
    mode: Literal["resident", "swap"]
    n_ctx: int
    budget: PlanBudget
    rule: str
    strategy: str
    alternatives: dict[str, float]
    swap_share: float | None = Field(default=None, description="Requests needing a load (swap).")
    n_questions: int
    n_candidates: int
    data: str
    skipped: list[Skipped]
    notes: list[str]
    hosts: list[HostPlan] | None = Field(default=None, description="With --host: each host's "
                                         "share of the placement (None: one machine).")
    sources: list[SourceFit] = Field(
        default_factory=list, description="Per outcome source: what the universe is expected to "
        "do there. With several, the objective is the mean of their routed accuracies.")

    def universe(self) -> Universe:
        """The universe to save for run, serve and chat; with hosts, each member names its host
        (provision.hosts.bind_hosts turns the remote ones into that host's catalog entries)."""
        local = {h.name for h in self.hosts or [] if h.local}
        return Universe(
            members=[Member(expert=m.id, quant=m.quant, memory_bytes=m.memory_bytes,
                            host=None if m.host in local else m.host)
                     for m in self.experts],
            n_ctx=self.n_ctx, mode=self.mode, origin="fit",
            budget={k: v for k, v in self.budget.model_dump().items()
                    if isinstance(v, int) and k.endswith("_bytes")},
        )
