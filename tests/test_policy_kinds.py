"""Policy v3: form tokens, the kind of work learned from the data's categories, the kind
estimate in the blend and in the ONNX graph (its second output names the kind)."""

import numpy as np
import pytest

from leeroo_local.policy import load_policy
from leeroo_local.policy.features import FeatureConfig, Featurizer, form_tokens, ngrams
from leeroo_local.policy.kinds import kind_labels, kind_scores
from leeroo_local.policy.neighbours import Blend
from leeroo_local.policy.recipe import fit_policy
from leeroo_local.policy.train import _labels, _model_facts, _write


def test_form_tokens_say_what_kind_of_prompt_it_is():
    assert "<first:lower>" in form_tokens("who sings i've got to be me")
    assert "<last:word>" in form_tokens("who sings i've got to be me")
    assert "<last:?>" in form_tokens("Which Bavarian town stages a festival?")
    assert "<code>" in form_tokens("def add(a, b):\n    return a + b\n")
    assert "<latex>" in form_tokens("If $x^2 = 4$, what is $x$?")
    assert "<options>" in form_tokens("Pick one.\nA. red\nB. blue\nC. green")
    assert "<fewshot>" in form_tokens("Q: 1+1?\nA: 2\nQ: 2+2?\nA: 4\nQ: 3+3?")
    assert "<code>" not in form_tokens("The three primary colours are")
    # the word tokenizer splits '<' off every word: a pseudo-token never meets a real n-gram
    assert not any(g.startswith("<len") for g in ngrams("<len:3> text", FeatureConfig(form=False)))


def test_a_policy_trained_before_form_tokens_keeps_its_features():
    old = FeatureConfig.from_dict({"ngrams": 2, "min_df": 2, "max_features": 10, "max_chars": 100})
    assert old.form is False and old.split_scripts is False
    assert FeatureConfig().form is True
    f = Featurizer(["<code>", "def"], FeatureConfig(form=True))
    ids, _ = f("def f():\n    return 1")
    assert sorted(ids.tolist()) == [0, 1]


def test_kind_scores_are_each_kinds_means_and_a_missing_expert_takes_its_overall_mean():
    Y = np.array([[1, 0], [1, 0], [0, 1], [0, np.nan]], dtype=float)
    kinds, index = kind_labels(["a"] * 5 + ["b"] * 5)
    assert kinds == ["a", "b"] and index.tolist() == [0] * 5 + [1] * 5
    K = kind_scores(Y, np.array([0, 0, 1, 1]), 2, prior=0.0)
    np.testing.assert_allclose(K, [[1.0, 0.0], [0.0, 1.0]])
    K = kind_scores(np.array([[1, np.nan], [0, np.nan], [1, 1.0]]), np.array([0, 0, 1]), 2, prior=0.0)
    assert K[0, 1] == 1.0  # no outcome of expert 1 in kind 0: its overall mean, nothing invented
    names, _ = kind_labels(["a"] * 6 + ["rare"] + [None])
    assert names == ["a", "other"]


def test_a_kind_a_source_never_ran_is_bridged_through_an_expert_both_sources_ran():
    """Two sources share one expert (0). Expert 2 ran only on source B's kind, where it beats
    expert 0 by a wide margin; on source A's kinds it is estimated from expert 0's scores
    there, shifted by that margin: above expert 0 on both, and the kinds keep their order,
    where its overall mean alone would score it the same on every kind."""
    rng = np.random.default_rng(0)
    Y = np.full((300, 3), np.nan)
    kind = np.repeat([0, 1, 2], 100)
    Y[:100, 0], Y[:100, 1] = rng.random(100) < 0.8, rng.random(100) < 0.4     # source A
    Y[100:200, 0], Y[100:200, 1] = rng.random(100) < 0.3, rng.random(100) < 0.7
    Y[200:, 0], Y[200:, 2] = rng.random(100) < 0.5, rng.random(100) < 0.7     # source B
    K = kind_scores(Y, kind, 3)
    assert K[0, 2] > K[0, 0] and K[1, 2] > K[1, 0]
    assert K[0, 2] > K[1, 2] + 0.2 and 0.0 < K[1, 2] < 1.0
    assert K[2, 1] == pytest.approx(K[2, 0], abs=0.1)  # expert 1 ties expert 0 on A: so on B
    few = Y.copy()
    few[:, 2] = np.nan
    few[200:220, 2] = 1.0  # 20 shared questions: too few to bridge, the overall mean stands
    assert kind_scores(few, kind, 3)[0, 2] == pytest.approx(1.0)


def kinds_matrix(n: int, seed: int):
    """Two kinds of work that share no expert: arithmetic (expert `calc` right 80%, `talk`
    20%) and trivia (the reverse); each prompt's words are random within its kind, so only
    the kind says who answers."""
    rng = np.random.default_rng(seed)
    texts, kinds, Y = [], [], np.zeros((n, 2))
    for i in range(n):
        if i % 2 == 0:
            a, b = rng.integers(10, 999, 2)
            texts.append(f"Compute {a} + {b} and give the result as a number.")
            kinds.append("arithmetic")
            Y[i] = rng.random(2) < [0.8, 0.2]
        else:
            who = rng.choice(["painted", "wrote", "composed", "directed", "built", "sang"])
            texts.append(f"who {who} the {rng.choice(['famous', 'old', 'first', 'last'])} "
                         f"{rng.choice(['song', 'book', 'tower', 'film', 'opera'])}")
            kinds.append("trivia")
            Y[i] = rng.random(2) < [0.2, 0.8]
    return texts, kinds, Y


def test_the_kind_estimate_joins_the_blend_and_routes_each_kind_to_its_expert():
    texts, kinds, Y = kinds_matrix(1200, seed=0)
    fitted = fit_policy(texts, Y, np.array([7.0, 7.0]), kinds=kinds)
    assert fitted.kinds is not None and fitted.blend.kind > 0
    assert fitted.kinds.kinds == ["arithmetic", "trivia"]
    fresh, fresh_kinds, _ = kinds_matrix(40, seed=1)
    picks = fitted.predict(fresh).argmax(1)
    assert (picks == np.array([0 if k == "arithmetic" else 1 for k in fresh_kinds])).all()
    post = fitted.predict_kinds(fresh)
    assert (post.argmax(1) == np.array([k == "trivia" for k in fresh_kinds])).all()


@pytest.mark.parametrize("with_clusters", [True, False])
def test_the_graph_computes_the_kind_estimate_as_numpy_does(tmp_path, with_clusters):
    from leeroo_local.store.outcomes import OutcomeMatrix

    texts, kinds, Y = kinds_matrix(1200, seed=2)
    fitted = fit_policy(texts, Y, np.array([7.0, 3.0]), kinds=kinds)
    # every part in, so the graph's every branch is covered whatever the selection chose
    from leeroo_local.policy.kinds import fit_kinds
    from leeroo_local.policy.neighbours import Neighbourhoods
    from leeroo_local.policy.recipe import DEFAULT_EMBEDDER, DenseEncoder

    if fitted.kinds is None:
        names, index = kind_labels(kinds)
        fitted.kinds = fit_kinds(fitted.design.X, Y, index, names, 0.01)
    if with_clusters:
        fitted.blend = Blend(0.5, 0.0, 0.25, clusters=3, kind=0.25)
        fitted.dense = DenseEncoder.fit(DEFAULT_EMBEDDER, texts, fitted.config.max_chars)
        fitted.hoods = Neighbourhoods.fit(fitted.dense.vectors(texts), Y, fitted.blend)
    else:  # the kind part alone: no subword input, no 4 MB table in the graph
        fitted.blend, fitted.dense, fitted.hoods = Blend(0.5, kind=0.5), None, None
    matrix = OutcomeMatrix([f"q{i}" for i in range(len(texts))], ["calc", "talk"],
                           Y.astype(np.float32))
    labels = _labels(matrix, "pol", fitted.config, None, {"calc": 7.0, "talk": 3.0}, None, [])
    labels.model.update(_model_facts(fitted))
    _write(tmp_path / "pol", labels, fitted)
    router = load_policy(tmp_path / "pol")
    assert (router.pieces is not None) == with_clusters
    assert router.labels.model["kinds"] == ["arithmetic", "trivia"]
    probe = ["Compute 12 + 30 and give the result as a number.", "who wrote the old book",
             "", "zzz unknown words only"]
    np.testing.assert_allclose(router.score_many(probe), fitted.predict(probe), atol=1e-4)
    np.testing.assert_allclose(router.kinds(probe[0]), fitted.predict_kinds(probe[:1])[0], atol=1e-4)
    assert router.kind(probe[1]) == "trivia"


def test_policy_train_learns_the_kinds_from_the_datas_categories(tmp_path):
    from outcome_folder import write_folder

    from leeroo_local.store.outcomes import load_matrix
    from leeroo_local.policy.train import train_policy

    texts, _, Y = kinds_matrix(1200, seed=3)  # write_folder labels even rows math, odd law
    folder = write_folder(tmp_path / "data", Y.astype(np.float32), ["calc", "talk"], texts=texts)
    train_policy(load_matrix(folder), tmp_path / "pol")
    router = load_policy(tmp_path / "pol")
    assert router.labels.model["kinds"] == ["law", "math"]
    assert router.labels.model["blend"]["kind"] > 0
    assert router.kind("Compute 5 + 6 and give the result as a number.") == "math"
    assert router.route("who sang the first song").expert == "talk"
