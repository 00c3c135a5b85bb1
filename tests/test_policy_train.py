"""Training writes a real ONNX policy that onnxruntime runs; it learns which expert is good where,
from 0/1 or fractional outcomes with missing cells; bad input gets clear errors."""

import json

import numpy as np
import pytest

from outcome_folder import random_scores, topic_matrix, write_folder
from leeroo_local.errors import DataError
from leeroo_local.store.outcomes import load_matrix
from leeroo_local.policy import load_policy
from leeroo_local.policy.features import prompt_text
from leeroo_local.policy.model import fit_logistic, log_loss
from leeroo_local.policy.train import design, texts_of, train_policy, transform
from leeroo_local.policy.features import FeatureConfig

PROMPTS = {"math": "solve the integral and the derivative of this polynomial equation",
           "law": "is the plaintiff owed damages under the contract statute in court",
           "bio": "which enzyme binds the protein in the cell membrane"}


@pytest.fixture
def topic_folder(tmp_path):
    scores, columns, texts, _ = topic_matrix(n=240, seed=1)
    scores[::7, 0] = np.nan  # missing cells are skipped, not read as failures
    return write_folder(tmp_path / "topics", scores, columns, texts=texts, costs=[8.0, 8.0, 2.0])


def test_policy_learns_who_is_good_where_from_fractional_scores(topic_folder, tmp_path):
    report = train_policy(load_matrix(topic_folder), tmp_path / "pol")
    assert report.questions == 240 and report.experts == ["mathy", "lawyer", "generalist"]
    assert report.train_log_loss < report.base_log_loss
    assert report.selection and report.l2_x_n in [t["l2_x_n"] for t in report.selection]
    router = load_policy(tmp_path / "pol")
    assert router.route(PROMPTS["math"]).expert == "mathy"
    assert router.route(PROMPTS["law"]).expert == "lawyer"
    assert router.route(PROMPTS["bio"]).expert == "generalist"
    # with a cost weight the cheap generalist takes the prompts the others win only narrowly
    assert router.route(PROMPTS["math"], cost_weight=0.2).expert == "generalist"
    labels = json.loads((tmp_path / "pol" / "policy.json").read_text())
    assert labels["costs"] == [8.0, 8.0, 2.0] and labels["quants"] == [None, None, None]
    assert len(labels["training"]["base_rates"]) == 3


def test_onnx_scores_equal_the_numpy_model(topic_folder, tmp_path):
    matrix = load_matrix(topic_folder)
    train_policy(matrix, tmp_path / "pol", embedder=None)  # the head alone (v1 recipe)
    router = load_policy(tmp_path / "pol")
    # the same features and model, computed by numpy, give the same numbers as the graph
    rows, texts = texts_of(matrix)
    d = design(texts, FeatureConfig.from_dict(router.labels.features))
    assert d.vocab == router.featurizer.vocab
    probe = list(PROMPTS.values()) + ["", "zzz unknown words only"]
    onnx_scores = router.score_many(probe)
    X = transform(d.featurizer, d.idf, probe)
    strength = router.labels.model["l2_x_n"]
    model = fit_logistic(d.X, matrix.scores[rows].astype(float), strength / d.X.n_rows)
    np.testing.assert_allclose(onnx_scores, model.predict(X), atol=2e-3)
    base = np.array(router.labels.training["base_rates"])
    assert np.abs(onnx_scores[-1] - base).max() < 0.15  # no known n-gram: near the base rates


def test_binary_outcomes_with_named_experts_and_quantized_columns(tmp_path):
    scores, _, texts, _ = topic_matrix(n=120, seed=2, fractional=False)
    cols = ["mathy@Q4_K_M", "lawyer", "generalist"]
    folder = write_folder(tmp_path / "bin", scores, cols, texts=texts)
    report = train_policy(load_matrix(folder), tmp_path / "pol", experts=["mathy@Q4_K_M", "lawyer"],
                          rename={"mathy": "math-expert"})
    assert report.experts == ["math-expert", "lawyer"]
    labels = load_policy(tmp_path / "pol").labels
    assert labels.quants == ["Q4_K_M", None] and labels.columns == ["mathy@Q4_K_M", "lawyer"]


def test_a_subsampled_real_matrix_trains_and_beats_base_rates(tmp_path):
    matrix = load_matrix()
    pick = np.random.default_rng(0).permutation(len(matrix.question_ids))[:200]
    sub = matrix.rows(np.sort(pick)).select(["Meta-Llama-3_1-8B-Instruct", "mathstral-7B",
                                             "Phi-3-mini-4k-instruct"])
    report = train_policy(sub, tmp_path / "pol")
    assert report.train_log_loss < report.base_log_loss and report.size_bytes < 25e6


def test_bad_training_input_is_refused(tmp_path, topic_folder):
    matrix = load_matrix(topic_folder)
    with pytest.raises(DataError, match="not in the data"):
        train_policy(matrix, tmp_path / "p", experts=["nobody"])
    few = write_folder(tmp_path / "few", random_scores(5, 2), ["a", "b"])
    with pytest.raises(DataError, match="at least 20"):
        train_policy(load_matrix(few), tmp_path / "p")
    empty = random_scores(30, 2)
    empty[:, 1] = np.nan
    folder = write_folder(tmp_path / "empty", empty, ["a", "b"])
    with pytest.raises(DataError, match="no outcomes for b"):
        train_policy(load_matrix(folder), tmp_path / "p")
    other = tmp_path / "not-a-policy"
    other.mkdir()
    (other / "precious.txt").write_text("keep me")
    with pytest.raises(DataError, match="not a policy folder"):
        train_policy(matrix, other)
    assert (other / "precious.txt").read_text() == "keep me"


def test_retraining_replaces_a_policy_folder_whole(topic_folder, tmp_path):
    matrix = load_matrix(topic_folder)
    train_policy(matrix, tmp_path / "pol")
    train_policy(matrix.select(["mathy", "lawyer"]), tmp_path / "pol")
    assert load_policy(tmp_path / "pol").experts == ["mathy", "lawyer"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pol", "topics"]


def test_loading_a_broken_policy_folder_says_what_is_wrong(topic_folder, tmp_path):
    train_policy(load_matrix(topic_folder), tmp_path / "pol")
    (tmp_path / "pol" / "policy.onnx").write_bytes(b"not a graph")
    with pytest.raises(DataError, match="cannot load the policy graph"):
        load_policy(tmp_path / "pol")
    with pytest.raises(DataError, match="not a policy folder"):
        load_policy(tmp_path)
    (tmp_path / "pol" / "policy.json").write_text("{}")
    with pytest.raises(DataError, match="invalid policy labels"):
        load_policy(tmp_path / "pol")


def test_prompts_are_built_like_training_texts(topic_folder):
    matrix = load_matrix(topic_folder)
    rows, texts = texts_of(matrix)
    rec = matrix.questions[matrix.question_ids[0]]
    assert texts[0] == prompt_text(rec["question"], rec["options"]) and texts[0].endswith("C. c")
    assert log_loss(np.full((2, 1), 0.5), np.array([[1.0], [np.nan]])) == pytest.approx(np.log(2))
