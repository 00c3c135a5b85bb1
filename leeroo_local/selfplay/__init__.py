"""Self-play: generate or draw questions, route and run them, evaluate, store, retrain.

Library API (the `selfplay` command is a thin layer over it):

    from leeroo_local.selfplay.loop import SelfPlay
    from leeroo_local.selfplay.config import SelfPlayConfig
    from leeroo_local.selfplay.retrain import PolicyStep
    loop = SelfPlay(service, open_db(), SelfPlayConfig(questions=20),
                    PolicyStep(service.settings, service.universe, service.catalog))
    reports = loop.run(rounds=2)                       # RoundReport per round (report.py)

    from leeroo_local.selfplay.onboarding import onboard
    verdict = onboard(loop, "phi-3-mini-4k-instruct")  # OnboardReport: join? at which quant?

Modules: sources (dataset file, LLM generator), runner (one expert on one question, with time
and energy; scoring itself is leeroo_local.scoring), exploration (all experts, or
epsilon-greedy), signal (questions that separate experts), loop (rounds, resumable through
store.rounds), retrain (train, validate, keep or replace the policy), onboarding (marginal gain
of a new expert under the current budget), config and report (the schemas).

Tier: beside the server and the TUI (it uses the Service like they do, and none of them imports
another); only the CLI sits above it.
"""
