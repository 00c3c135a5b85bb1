"""Onboard a newly added expert and, when it earns its place, make it routable.

The verdict is onboarding's (an `onboard` round: the expert runs on stored questions every
member was scored on, log-likelihood scoring, resumable). An expert that should join is added
to the saved universe at the quantization the verdict chose, and the routing policy is retrained
on the store (the retrain step of self-play, judged on the validation set when there is one), so
that `--expert auto` can send prompts to it. An expert that should not join changes nothing but
the store: the policy routes among members only.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel, Field

from ..provision.ensure import ensure_local
from ..settings import load_settings
from ..store import open_db
from ..store import rounds as store
from ..universe import Member, save_universe
from .config import SelfPlayConfig
from .onboarding import OnboardReport, onboard
from .report import RetrainResult


class AdoptReport(BaseModel):
    """The verdict on the new expert and what was done about it."""

    verdict: OnboardReport = Field(description="Onboarding's verdict.")
    joined: bool = Field(description="The expert was added to the saved universe.")
    universe: list[str] = Field(description="Members after this step, as expert@quant.")
    retrain: RetrainResult | None = Field(
        default=None, description="The policy retrain (None when the expert did not join).")


def adopt(expert: str, questions: int = 30, seed: int = 0, min_gain: float = 0.0,
          on_event: Callable | None = None) -> AdoptReport:
    """Judge `expert` for the current universe; when it joins, save the universe with it and
    retrain the routing policy. Interrupted, it resumes from the stored outcomes."""
    from ..runtime.service import Service
    from .loop import SelfPlay
    from .retrain import PolicyStep

    settings, db = load_settings(), open_db()
    has_validation = store.get_round(db, "validation", 0) is not None
    # a validation set already drawn is used (the new member is scored on it); none is drawn here
    config = SelfPlayConfig(seed=seed, validation=20 if has_validation else 0)
    service = Service(settings, client="add")
    try:
        verdict = onboard(SelfPlay(service, db, config, on_event=on_event), expert, questions,
                          min_gain)
        universe = service.universe
    finally:
        service.close()
    if not verdict.join:
        return AdoptReport(verdict=verdict, joined=False,
                           universe=[f"{m.expert}@{m.quant}" for m in universe.members])
    option = next(o for o in verdict.options if o.quant == verdict.quant)
    joined = universe.model_copy(update={"members": [
        *universe.members, Member(expert=expert, quant=option.quant,
                                  memory_bytes=option.memory_bytes)]})
    if option.quant.upper() != verdict.quant_run.upper():
        e = service.catalog.get(expert)
        ensure_local(service.catalog, e, e.quant(option.quant), progress=None)
    save_universe(joined)
    service = Service(settings, client="add")
    try:
        policy = PolicyStep(settings, service.universe, service.catalog, seed=seed)
        loop = SelfPlay(service, db, config, policy, on_event=on_event)
        loop.ensure_validation()
        retrain = policy.after_round(db, store.last_number(db, "round"), loop.members, config.keep)
    finally:
        service.close()
    return AdoptReport(verdict=verdict, joined=True, retrain=retrain,
                       universe=[f"{m.expert}@{m.quant}" for m in joined.members])
