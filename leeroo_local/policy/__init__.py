"""The routing policy: from a prompt's text, a predicted score per expert; then the cost-aware
choice of ONE expert (base.py). Exported to ONNX, so routing needs onnxruntime alone.

Library API (what the CLI, the service and self-play call):

    from leeroo_local.policy import load_policy, Budget
    router = load_policy("leeroo_local/policies/catalog")    # a policy folder (labels + ONNX)
    router.scores("What is 2+2?")                            # np.ndarray, one score per expert
    router.route(prompt, cost_weight=0.01)                   # Decision(expert, scores, ...)
    router.route_batch(prompts, max_mean_cost=5.0)           # mean cost never above 5.0

    from leeroo_local.policy.train import train_policy       # training side (numpy + onnx)
    report = train_policy(matrix, out_dir, experts=None, seed=0)

    from leeroo_local.policy.evaluate import evaluate_policy # accuracy-cost curve, AIQ
    from leeroo_local.policy.shipped import shipped_policy   # the default for a universe
    from leeroo_local.policy.naming import catalog_names     # data columns -> catalog ids

Modules: features (tokenizer, shared by training and routing), base (Router, decide, Budget),
labels (the folder's policy.json and vocab.txt), onnx_runtime (the only importer of
onnxruntime), and, for training only, sparse, lbfgs, model, export (the only importer of onnx)
and train.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .base import Budget, Decision, Router, decide

if TYPE_CHECKING:
    from .onnx_runtime import OnnxRouter

__all__ = ["Budget", "Decision", "Router", "decide", "load_policy"]


def load_policy(path: str | Path, onnx_file: str | None = None) -> OnnxRouter:
    """The router of a policy folder (onnxruntime is imported here, on first use)."""
    from .onnx_runtime import OnnxRouter

    return OnnxRouter(path, onnx_file)
