"""Two self-play rounds on the starter experts (real llama.cpp), with the shipped MMLU-Pro
questions as the dataset source and log-likelihood scoring.

The starter universe (gemma-3-270m Q4_K_M and its local Q4_0). The shipped starter outcomes
(400 questions, the starter policy's training data) go into the store first; a fixed validation
set of other questions is drawn and run on both; then each round: draw questions, run every question on both experts
(two experts: all answer), store the outcomes with their provenance, measure the signal,
retrain the policy (on the 400 and the round's questions that separate the experts) and judge
it on the validation set against the policy in use (at first the shipped starter policy); the
new one is kept only when at least as accurate.
Runs in a fresh store (a temporary LEEROO_HOME unless --home is given); the experts' files
come from the user's models folder (assembled / quantized there on first use, offline).

    python bench/selfplay_starter.py [--rounds 2] [--questions 20] [--validation 20]
                                     [--keep signal|all] [--json out.json]

About 3-6 minutes on 2 busy cores with the defaults (~1-3 s per question per expert).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's leeroo_local


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--questions", type=int, default=20, help="questions per round")
    parser.add_argument("--validation", type=int, default=20, help="validation questions")
    parser.add_argument("--keep", choices=("all", "signal"), default="signal",
                        help="retrain on self-play questions that separate the experts "
                        "(signal, the CLI's default) or on all of them")
    parser.add_argument("--max-chars", type=int, default=1000, help="skip longer questions")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="llama.cpp threads (0: half)")
    parser.add_argument("--home", help="LEEROO_HOME to run in (default: a fresh temporary one)")
    parser.add_argument("--json", dest="json_out", help="write the reports here")
    args = parser.parse_args()

    from leeroo_local import paths

    models = paths.models_dir()  # the user's: prepared files are reused across runs
    home = Path(args.home) if args.home else Path(tempfile.mkdtemp(prefix="leeroo-selfplay-"))
    os.environ[paths.ENV_HOME] = str(home)
    if not (home / "models").exists():
        home.mkdir(parents=True, exist_ok=True)
        (home / "models").symlink_to(models, target_is_directory=True)

    from leeroo_local.catalog import load_catalog
    from leeroo_local.provision.ensure import ensure_all
    from leeroo_local.selfplay.config import SelfPlayConfig
    from leeroo_local.selfplay.loop import SelfPlay
    from leeroo_local.selfplay.retrain import PolicyStep
    from leeroo_local.runtime.service import Service
    from leeroo_local.settings import load_settings
    from leeroo_local.store import open_db
    from leeroo_local.universe import starter_universe

    catalog = load_catalog()
    universe = starter_universe(n_ctx=2048)
    service = Service(load_settings(keep_alive_s=600, n_threads=args.threads), catalog, universe,
                      client="bench")
    started = time.perf_counter()
    # assemble / quantize before timing anything
    ensure_all(catalog, [(m.expert, m.quant) for m in universe.members])
    prepare_s = time.perf_counter() - started
    config = SelfPlayConfig(questions=args.questions, validation=args.validation, seed=args.seed,
                            keep=args.keep, max_chars=args.max_chars, evaluator="loglik")
    db = open_db()
    last = [0.0]

    def progress(event):
        if event.task is None:
            print(f"  {event.stage} (round {event.round}): {event.done}/{event.total}", flush=True)
        elif event.done % 10 == 0 or event.done == event.total:
            now = time.perf_counter() - started
            print(f"    {event.done}/{event.total} ({now:.0f}s, +{now - last[0]:.0f}s)", flush=True)
            last[0] = now

    policy = PolicyStep(service.settings, universe, catalog, seed=args.seed)
    loop = SelfPlay(service, db, config, policy, on_event=progress)
    try:
        imported = loop.import_shipped()
        incumbent = policy.current_folder()
        v0 = time.perf_counter()
        loop.ensure_validation()
        validation_s = time.perf_counter() - v0
        val = store_totals(db)
        reports = loop.run(args.rounds)
    finally:
        service.close()
    total = time.perf_counter() - started

    print(f"\nstarter universe: {', '.join(f'{m.expert} {m.quant}' for m in universe.members)}; "
          f"evaluator loglik (acc_norm); keep {args.keep}; seed {args.seed}")
    print(f"imported shipped outcomes: {', '.join(imported) or 'none'}; policy in use at the "
          f"start: {incumbent.name if incumbent else 'none (first member)'}")
    print(f"validation set: {args.validation} questions x 2 experts in {validation_s:.0f}s "
          f"({val['energy_j']:.0f} J); accuracy per expert: "
          + ", ".join(f"{e} {a:.2f}" for e, a in val["accuracy"].items()))
    head = (f"{'round':>5} {'questions':>9} {'outcomes':>8} {'signal':>7} {'val acc':>8} "
            f"{'candidate':>9} {'policy':>9} {'train q':>7} {'time s':>7} {'energy J':>9}")
    print(head)
    for r in reports:
        sig = "-" if r.signal_share is None else f"{100 * r.signal_share:.0f}%"
        va = r.retrain.validation_accuracy
        ca = r.retrain.candidate_accuracy
        print(f"{r.number:>5} {r.questions:>9} {r.scored:>8} {sig:>7} "
              f"{'-' if va is None else f'{100 * va:.1f}%':>8} "
              f"{'-' if ca is None else f'{100 * ca:.1f}%':>9} {r.retrain.action:>9} "
              f"{r.retrain.training_questions:>7} {r.seconds:>7.1f} {r.energy_j:>9.0f}")
    for r in reports:
        print(f"round {r.number}: {r.retrain.detail} (energy {r.energy_method})")
    print(f"total {total:.0f}s (prepare {prepare_s:.0f}s); store {home / 'leeroo.db'}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({
            "universe": [m.model_dump() for m in universe.members], "config": config.model_dump(),
            "imported": imported, "incumbent": str(incumbent) if incumbent else None,
            "validation": {**val, "seconds": validation_s},
            "rounds": [r.model_dump() for r in reports], "total_s": total,
            "prepare_s": prepare_s}, indent=2))


def store_totals(db) -> dict:
    """The validation round's energy and each expert's accuracy on it."""
    from leeroo_local.store import rounds as store

    row = store.get_round(db, "validation", 0)
    totals = store.totals(db, row["id"])
    scores: dict[str, list[float]] = {}
    for t in store.tasks(db, row["id"], store.SCORED):
        scores.setdefault(f"{t.expert}@{t.quant}", []).append(t.score)
    return {"energy_j": totals["energy_j"],
            "accuracy": {e: sum(v) / len(v) for e, v in scores.items()}}


if __name__ == "__main__":
    main()
