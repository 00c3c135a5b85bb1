"""The one module that imports onnxruntime: runs a policy folder's graph for one prompt.

Sessions use one thread: a graph this small is done in tens of microseconds, and waking a
thread pool would cost more than the work (bench/route_latency.py measures the whole path).
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from ..errors import DataError
from .base import Router
from .features import FeatureConfig, Featurizer, raw_tokens
from .labels import PolicyLabels, read_labels, read_vocab


def _session(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for bad files
        raise DataError(f"{path}: cannot load the policy graph: {exc}") from None


class _Background(threading.Thread):
    """Build the graph's session while the caller reads the vocabularies: onnxruntime parses
    and optimises the graph in C++ without holding the GIL (about 6 of the 30 ms of a load)."""

    def __init__(self, path: Path):
        import onnxruntime  # noqa: F401  here: an import in the thread would contend for the GIL

        super().__init__(name="leeroo-policy-session", daemon=True)
        self.path, self.session, self.error = path, None, None
        self.start()

    def run(self) -> None:
        try:
            self.session = _session(self.path)
        except BaseException as exc:  # re-raised by result(), in the caller's thread
            self.error = exc

    def result(self):
        self.join()
        if self.error is not None:
            raise self.error
        return self.session


class OnnxRouter(Router):
    """A trained policy: tokenizer from the labels, scores from the ONNX graph."""

    def __init__(self, folder: str | Path, onnx_file: str | None = None):
        self.folder = Path(folder)
        self.labels: PolicyLabels = read_labels(self.folder)
        super().__init__(self.labels.experts, self.labels.costs)
        self.graph_path = self.folder / (onnx_file or self.labels.onnx_file)
        if not self.graph_path.is_file():
            raise DataError(f"{self.graph_path}: the policy's graph is missing")
        session = _Background(self.graph_path)
        config = FeatureConfig.from_dict(self.labels.features)
        self.featurizer = Featurizer(read_vocab(self.folder, self.labels), config)
        self.pieces = None
        tokenizer = self.labels.model.get("tokenizer")
        if tokenizer:  # a policy with neighbourhoods also reads the prompt's subword ids
            from .embed import Pieces

            self.pieces = Pieces(self.folder / tokenizer, config.max_chars)
        self._session = session.result()
        self.scores("")  # onnxruntime allocates on its first run: at load, not in a decision

    def scores(self, prompt: str) -> np.ndarray:
        return self._run(prompt)[0][0].astype(np.float64)

    def kinds(self, prompt: str) -> np.ndarray | None:
        """The posterior over the kinds of work (labels.model["kinds"]) the policy learned
        from its data's categories; None for a policy without a kind model."""
        out = self._run(prompt)
        return out[1][0].astype(np.float64) if len(out) > 1 else None

    def kind(self, prompt: str) -> str | None:
        """The kind of work the policy recognises in `prompt` (its best guess), or None."""
        return self.scores_and_kind(prompt)[1]

    def scores_and_kind(self, prompt: str) -> tuple[np.ndarray, str | None]:
        out = self._run(prompt)
        names = self.labels.model.get("kinds") or []
        post = out[1][0] if len(out) > 1 else None
        kind = names[int(np.argmax(post))] if post is not None and len(names) == len(post) else None
        return out[0][0].astype(np.float64), kind

    def _run(self, prompt: str) -> list[np.ndarray]:
        # No known n-gram gives empty inputs: the graph then returns sigmoid(bias), each
        # expert's base rate (blended with the neighbourhoods of an empty prompt's vector).
        config = self.featurizer.config
        # one pass of the word splitter serves both tokenizers when they split alike
        raw = raw_tokens(prompt, config.max_chars) if config.split_scripts else None
        ids, counts = self.featurizer(prompt, raw)
        feeds = {"ids": ids, "counts": counts}
        if self.pieces is not None:
            feeds["pieces"] = self.pieces(prompt, raw)
        return self._session.run(None, feeds)


def quantize_int8(src: Path, dst: Path) -> Path:
    """int8 dynamic quantization of a graph's weights (onnxruntime.quantization), for the
    measurement of bench/policy_int8.py."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8)
    return Path(dst)
