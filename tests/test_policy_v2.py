"""Policy v2: prompts in scripts without spaces route by their words; the dense neighbourhood
blend runs in the ONNX graph exactly as numpy computes it; `policy eval --plot` draws a PNG."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from outcome_folder import topic_matrix, write_folder
from leeroo_local.cli import app
from leeroo_local.store.outcomes import load_matrix
from leeroo_local.policy import load_policy
from leeroo_local.policy.features import tokens
from leeroo_local.policy.neighbours import Blend, Neighbourhoods
from leeroo_local.policy.recipe import DEFAULT_EMBEDDER, DenseEncoder, fit_policy
from leeroo_local.policy.train import texts_of, train_policy

FILLER = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行所民得经十三之进着等部度家电力里如水高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处府研"


# Common characters, without the four of the two keywords.


def chinese_matrix(n: int, seed: int) -> tuple[np.ndarray, list[str], list[str]]:
    """Chinese questions (no spaces); `chem` is right when the question names 化学 (chemistry),
    `law` when it names 法律 (law); the keyword sits at a random place in random filler."""
    rng = np.random.default_rng(seed)
    texts, scores = [], np.zeros((n, 2), np.float32)
    for i in range(n):
        key = "化学" if i % 2 == 0 else "法律"
        chars = list(rng.choice(list(FILLER), 24))
        at = int(rng.integers(0, len(chars)))
        texts.append("".join(chars[:at]) + key + "".join(chars[at:]) + "？")
        good = np.array([0.9, 0.2]) if i % 2 == 0 else np.array([0.2, 0.9])
        scores[i] = (rng.random(2) < good).astype(np.float32)
    return scores, ["chem", "law"], texts


def test_tokens_split_scripts_without_spaces_into_characters():
    assert tokens("这是化学 and Thai ภาษา") == ["这", "是", "化", "学", "and", "thai", "ภ", "า", "ษ", "า"]
    assert tokens("这是化学", split_scripts=False) == ["这是化学"]  # v1: one giant token


def test_chinese_questions_route_by_their_keyword(tmp_path):
    scores, columns, texts = chinese_matrix(240, seed=0)
    folder = write_folder(tmp_path / "zh", scores, columns, texts=texts)
    train_policy(load_matrix(folder), tmp_path / "pol")
    router = load_policy(tmp_path / "pol")
    _, _, fresh = chinese_matrix(40, seed=1)  # questions it never saw
    picks = [router.route(t).expert for t in fresh]
    right = sum(p == ("chem" if i % 2 == 0 else "law") for i, p in enumerate(picks))
    assert right >= 38, picks


def test_the_graph_computes_the_blend_as_numpy_does(tmp_path):
    scores, columns, texts, _ = topic_matrix(n=240, seed=3)
    folder = write_folder(tmp_path / "topics", scores, columns, texts=texts, costs=[8.0, 8.0, 2.0])
    matrix = load_matrix(folder)
    rows, train_texts = texts_of(matrix)
    Y = matrix.scores[rows].astype(float)
    fitted = fit_policy(train_texts, Y, matrix.costs())
    # 240 questions are too few to choose a blend on (the head alone routes): force all three
    # parts in, so the test covers the graph's every branch
    fitted.blend = Blend(0.5, 0.25, 0.25, k=15, clusters=3)
    fitted.dense = DenseEncoder.fit(DEFAULT_EMBEDDER, train_texts, fitted.config.max_chars)
    fitted.hoods = Neighbourhoods.fit(fitted.dense.vectors(train_texts), Y, fitted.blend)
    from leeroo_local.policy.train import _labels, _model_facts, _write

    labels = _labels(matrix, "pol", fitted.config, None, None, None, [])
    labels.model.update(_model_facts(fitted))
    _write(tmp_path / "pol", labels, fitted)
    router = load_policy(tmp_path / "pol")
    assert router.labels.model["kind"] == "tfidf-logistic+neighbourhoods"
    probe = ["solve the integral of this polynomial", "which court heard the contract case",
             "", "zzz unknown words only", "这是一个化学问题"]
    np.testing.assert_allclose(router.score_many(probe), fitted.predict(probe), atol=1e-4)


def test_policy_eval_plots_the_accuracy_cost_curve(tmp_path):
    scores, columns, texts, _ = topic_matrix(n=120, seed=4)
    folder = write_folder(tmp_path / "topics", scores, columns, texts=texts, costs=[8.0, 8.0, 2.0])
    train_policy(load_matrix(folder), tmp_path / "pol")
    png = tmp_path / "curve.png"
    result = CliRunner().invoke(app, ["policy", "eval", "--policy", str(tmp_path / "pol"),
                                      "--data", str(folder), "--plot", str(png)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["plot"] == str(png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_plot_without_matplotlib_names_the_extra(tmp_path, monkeypatch):
    import builtins

    from leeroo_local.errors import ConfigError
    from leeroo_local.policy import plot

    real = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(ConfigError, match=r"leeroo-local\[plot\]"):
        plot.plot_report({}, tmp_path / "x.png")


def test_knn_is_a_blend_candidate_only_when_asked():
    """Outcomes that alternate 16 times around a circle of prompt vectors: only kNN can follow
    them (a handful of clusters cannot), so kNN wins when it is a candidate, and is never
    chosen when it is not."""
    from leeroo_local.policy.neighbours import select_blend

    rng = np.random.default_rng(0)
    angle = rng.uniform(0, 2 * np.pi, 1000)
    V = np.stack([np.cos(angle), np.sin(angle)], 1).astype(np.float32)
    good = np.sin(8 * angle) > 0
    Y = np.stack([good, ~good], 1).astype(float)
    fit, val = np.arange(800), np.arange(800, 1000)
    head_val = np.full((200, 2), 0.5)
    costs = np.array([1.0, 1.0])
    without = select_blend(head_val, V[fit], Y[fit], V[val], Y[val], costs)
    assert without.knn == 0 and all(t["knn"] == 0 for t in without.trials)
    with_knn = select_blend(head_val, V[fit], Y[fit], V[val], Y[val], costs, knn=True)
    assert with_knn.knn > 0 and with_knn.k > 0
