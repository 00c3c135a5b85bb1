"""Write a policy's ONNX graph (the `onnx` package; training side only, never at routing time).

The graph takes one prompt's n-gram ids and counts and does the rest, so the runtime only
tokenizes:

    tf    = 1 + ln(counts)                       sublinear term frequency
    x     = tf * idf[ids];  x /= max(|x|, eps)   TF-IDF, unit length
    score = sigmoid(x @ W[ids] + b)              one score per expert

A policy with neighbourhoods (recipe.py) also takes the prompt's subword ids (`pieces`) and
blends the head with the kNN and cluster estimates on the prompt's dense vector:

    v     = unit(sum idf[p] T[p] / sum idf[p] - center)      T: static table (float16)
    knn   = mean of outcomes[top-k of memory @ v]
    clu   = cluster_scores[argmax centroids @ v]
    score = a_head * score + a_knn * knn + a_cluster * clu

A policy with a kind model (kinds.py) adds, on the same TF-IDF row x, the posterior over the
kinds of work (a second output, `kinds`, so the runtime can name the kind it recognised) and
its expected expert scores:

    kinds = softmax(x @ Wk[ids] + bk);   score += a_kind * kinds @ K

Opset 17 / IR 8, so any onnxruntime from 1.14 on runs it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

OPSET = 17
IR_VERSION = 8


def build_graph(idf: np.ndarray, weights: np.ndarray, bias: np.ndarray, name: str = "policy",
                dense: dict | None = None, kinds: dict | None = None):
    """The ModelProto of a TF-IDF + linear-head policy (weights: vocab x experts); `dense`
    (see _dense_nodes) adds the neighbourhood blend, `kinds` (see _kind_nodes) the kind
    estimate."""
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
    ]
    inputs = [helper.make_tensor_value_info("ids", TensorProto.INT64, ["n"]),
              helper.make_tensor_value_info("counts", TensorProto.FLOAT, ["n"])]
    n_experts = int(np.asarray(weights).shape[1])
    outputs = [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, n_experts])]
    if dense is None and kinds is None:
        nodes.append(n("Sigmoid", ["z"], ["scores"]))
    else:
        blend = (dense or kinds)["blend"]
        inits.append(numpy_helper.from_array(np.array(blend["head"], f32), "a_head"))
        nodes += [n("Sigmoid", ["z"], ["head"]), n("Mul", ["head", "a_head"], ["part_head"])]
        parts = ["part_head"]
        for more in ([_dense_nodes(dense)] if dense is not None else []) + \
                    ([_kind_nodes(kinds)] if kinds is not None else []):
            inits += more[0]
            nodes += more[1]
            parts += more[2]
        nodes.append(n("Sum", parts, ["scores"]))
        if dense is not None:
            inputs.append(helper.make_tensor_value_info("pieces", TensorProto.INT64, ["m"]))
        if kinds is not None:
            outputs.append(helper.make_tensor_value_info(
                "kinds", TensorProto.FLOAT, [1, int(np.asarray(kinds["scores"]).shape[0])]))
    graph = helper.make_graph(nodes, name, inputs=inputs, outputs=outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="leeroo-local")
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model


def _kind_nodes(kinds: dict) -> tuple[list, list, list]:
    """Initializers, nodes and the blend part from `x_row` (the TF-IDF row) and `ids`: the
    posterior over kinds (output `kinds`) and a_kind x its expected expert scores. kinds:
    weights (vocab x kinds), bias, scores (kinds x experts), blend."""
    from onnx import helper, numpy_helper

    f32 = np.float32
    inits = [numpy_helper.from_array(np.asarray(kinds["weights"], f32), "Wk"),
             numpy_helper.from_array(np.asarray(kinds["bias"], f32).reshape(1, -1), "bk"),
             numpy_helper.from_array(np.asarray(kinds["scores"], f32), "K"),
             numpy_helper.from_array(np.array(kinds["blend"]["kind"], f32), "a_kind")]
    n = helper.make_node
    nodes = [n("Gather", ["Wk", "ids"], ["Wk_ids"], axis=0),
             n("MatMul", ["x_row", "Wk_ids"], ["zk_raw"]),
             n("Add", ["zk_raw", "bk"], ["zk"]),
             n("Softmax", ["zk"], ["kinds"], axis=1),
             n("MatMul", ["kinds", "K"], ["kind_scores"]),
             n("Mul", ["kind_scores", "a_kind"], ["part_kind"])]
    return inits, nodes, ["part_kind"]


def _dense_nodes(dense: dict) -> tuple[list, list, list]:
    """Initializers, nodes and blend parts from `pieces` (and the dense vector's
    neighbourhoods). dense: table, piece_idf, center, blend (knn, cluster weights), k,
    memory, outcomes, centroids, cluster_scores."""
    from onnx import TensorProto, helper, numpy_helper

    f32 = np.float32
    blend = dense["blend"]
    inits = [
        numpy_helper.from_array(np.asarray(dense["table"], np.float16), "T"),
        numpy_helper.from_array(np.asarray(dense["piece_idf"], f32), "piece_idf"),
        numpy_helper.from_array(np.asarray(dense["center"], f32).reshape(1, -1), "center"),
        numpy_helper.from_array(np.array(1e-6, f32), "eps_v"),
    ]
    n = helper.make_node
    nodes = [
        n("Gather", ["piece_idf", "pieces"], ["pw"], axis=0),
        n("Gather", ["T", "pieces"], ["rows16"], axis=0),
        n("Cast", ["rows16"], ["rows"], to=TensorProto.FLOAT),
        n("Unsqueeze", ["pw", "axis0"], ["pw_row"]),
        n("MatMul", ["pw_row", "rows"], ["v_sum"]),
        n("ReduceSum", ["pw"], ["pw_sum_raw"], keepdims=1),
        n("Max", ["pw_sum_raw", "eps_v"], ["pw_sum"]),
        n("Div", ["v_sum", "pw_sum"], ["v_mean"]),
        n("Sub", ["v_mean", "center"], ["v_raw"]),
        n("Mul", ["v_raw", "v_raw"], ["v_sq"]),
        n("ReduceSum", ["v_sq"], ["v_ss"], keepdims=1),
        n("Sqrt", ["v_ss"], ["v_norm_raw"]),
        n("Max", ["v_norm_raw", "eps_v"], ["v_norm"]),
        n("Div", ["v_raw", "v_norm"], ["v"]),
    ]
    parts = []
    if blend["knn"]:
        inits += [numpy_helper.from_array(np.asarray(dense["memory"], f32).T.copy(), "memory_t"),
                  numpy_helper.from_array(np.asarray(dense["outcomes"], f32), "outcomes"),
                  numpy_helper.from_array(np.array([min(int(blend["k"]), len(dense["memory"]))], np.int64), "k"),
                  numpy_helper.from_array(np.array(blend["knn"], f32), "a_knn"),
                  numpy_helper.from_array(np.array([1], np.int64), "axis1")]
        nodes += [n("MatMul", ["v", "memory_t"], ["sim"]),
                  n("TopK", ["sim", "k"], ["top_sim", "top_idx"], axis=1),
                  n("Squeeze", ["top_idx", "axis0"], ["top"]),
                  n("Gather", ["outcomes", "top"], ["near"], axis=0),
                  n("ReduceMean", ["near"], ["knn"], axes=[0], keepdims=1),
                  n("Mul", ["knn", "a_knn"], ["part_knn"])]
        parts.append("part_knn")
    if blend["cluster"]:
        inits += [numpy_helper.from_array(np.asarray(dense["centroids"], f32).T.copy(), "centroids_t"),
                  numpy_helper.from_array(np.asarray(dense["cluster_scores"], f32), "cluster_scores"),
                  numpy_helper.from_array(np.array(blend["cluster"], f32), "a_cluster")]
        nodes += [n("MatMul", ["v", "centroids_t"], ["csim"]),
                  n("ArgMax", ["csim"], ["cluster"], axis=1, keepdims=0),
                  n("Gather", ["cluster_scores", "cluster"], ["clu"], axis=0),
                  n("Mul", ["clu", "a_cluster"], ["part_cluster"])]
        parts.append("part_cluster")
    return inits, nodes, parts


def write_graph(path: Path, idf: np.ndarray, weights: np.ndarray, bias: np.ndarray,
                dense: dict | None = None, kinds: dict | None = None) -> Path:
    """Save the graph (a few MB: vocab x experts float32 weights, plus the dense and kind
    parts)."""
    import onnx

    onnx.save_model(build_graph(idf, weights, bias, dense=dense, kinds=kinds), str(path))
    return Path(path)

