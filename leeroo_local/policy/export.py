"""Write a policy's ONNX graph (the `onnx` package; training side only, never at routing time).

The graph takes one prompt's n-gram ids and counts and does the rest, so the runtime only
tokenizes:

    tf    = 1 + ln(counts)                       sublinear term frequency
    x     = tf * idf[ids];  x /= max(|x|, eps)   TF-IDF, unit length
    score = sigmoid(x @ W[ids] + b)              one score per expert

Opset 17 / IR 8, so any onnxruntime from 1.14 on runs it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

OPSET = 17
IR_VERSION = 8


def build_graph(idf: np.ndarray, weights: np.ndarray, bias: np.ndarray, name: str = "policy"):
    """The ModelProto of a TF-IDF + linear-head policy (weights: vocab x experts)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    f32 = np.float32
    inits = [
        numpy_helper.from_array(np.asarray(idf, f32), "idf"),
        numpy_helper.from_array(np.asarray(weights, f32), "W"),
        numpy_helper.from_array(np.asarray(bias, f32).reshape(1, -1), "b"),
        numpy_helper.from_array(np.array(1.0, f32), "one"),
        numpy_helper.from_array(np.array(1e-6, f32), "eps"),
        numpy_helper.from_array(np.array([0], np.int64), "axis0"),
    ]
    n = helper.make_node
    nodes = [
        n("Log", ["counts"], ["log_counts"]),
        n("Add", ["log_counts", "one"], ["tf"]),
        n("Gather", ["idf", "ids"], ["idf_ids"], axis=0),
        n("Mul", ["tf", "idf_ids"], ["x_raw"]),
        n("Mul", ["x_raw", "x_raw"], ["x_sq"]),
        n("ReduceSum", ["x_sq"], ["x_ss"], keepdims=1),
        n("Sqrt", ["x_ss"], ["x_norm_raw"]),
        n("Max", ["x_norm_raw", "eps"], ["x_norm"]),
        n("Div", ["x_raw", "x_norm"], ["x"]),
        n("Unsqueeze", ["x", "axis0"], ["x_row"]),
        n("Gather", ["W", "ids"], ["W_ids"], axis=0),
        n("MatMul", ["x_row", "W_ids"], ["z_raw"]),
        n("Add", ["z_raw", "b"], ["z"]),
        n("Sigmoid", ["z"], ["scores"]),
    ]
    n_experts = int(np.asarray(weights).shape[1])
    graph = helper.make_graph(
        nodes, name,
        inputs=[helper.make_tensor_value_info("ids", TensorProto.INT64, ["n"]),
                helper.make_tensor_value_info("counts", TensorProto.FLOAT, ["n"])],
        outputs=[helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, n_experts])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="leeroo-local")
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model


def write_graph(path: Path, idf: np.ndarray, weights: np.ndarray, bias: np.ndarray) -> Path:
    """Save the graph (a few MB: vocab x experts float32 weights)."""
    import onnx

    onnx.save_model(build_graph(idf, weights, bias), str(path))
    return Path(path)

