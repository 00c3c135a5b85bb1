"""The policy's numpy parts: tokenizer, sparse products, TF-IDF, L-BFGS, the cost-aware decision
and the budget rule, the evaluation metrics."""

import numpy as np
import pytest

from leeroo_local.errors import ConfigError
from leeroo_local.policy.base import Budget, Router, decide, lagrange_weight
from leeroo_local.policy.evaluate import evaluate, hull_area
from leeroo_local.policy.features import FeatureConfig, Featurizer, build_vocab, prompt_text, tokens
from leeroo_local.policy.lbfgs import minimize
from leeroo_local.policy.sparse import CSR, smooth_idf, tfidf_values


def test_tokens_keep_symbols_and_collapse_long_numbers():
    assert tokens("Solve x^2 = 12345, (A) 7!") == ["solve", "x", "^", "2", "=", "#####", ",", "(",
                                                   "a", ")", "7", "!"]
    assert tokens("abc" * 10, max_chars=6) == ["abcabc"]


def test_prompt_text_letters_the_options():
    assert prompt_text("Q?", ["x", "y"]) == "Q?\nA. x\nB. y"
    assert prompt_text("Q?", None) == "Q?"


def test_vocab_keeps_ngrams_seen_twice_most_frequent_first():
    cfg = FeatureConfig(min_df=2, max_features=3, form=False)  # words only (form: test_policy_kinds)
    vocab, df = build_vocab(["red cat", "red dog", "red cat sat"], cfg)
    assert vocab == ["red", "cat", "red cat"] and df.tolist() == [3, 2, 2]
    ids, counts = Featurizer(vocab, cfg)("red red cat fish")
    assert dict(zip(ids.tolist(), counts.tolist())) == {0: 2.0, 1: 1.0, 2: 1.0}
    ids, counts = Featurizer(vocab, cfg)("nothing known")
    assert len(ids) == 0 and ids.dtype == np.int64


def _random_csr(rng, n_rows, n_cols, empty_row=True):
    dense = (rng.random((n_rows, n_cols)) < 0.2) * rng.random((n_rows, n_cols))
    if empty_row:
        dense[1] = 0.0
    dense[:, 2] = 0.0  # an empty column too
    indptr = np.r_[0, np.cumsum((dense != 0).sum(1))]
    indices = np.concatenate([np.flatnonzero(r) for r in dense])
    return CSR(indptr, indices, dense[dense != 0].astype(np.float32), n_cols), dense.astype(np.float32)


def test_csr_products_and_row_selection_match_dense():
    rng = np.random.default_rng(0)
    X, dense = _random_csr(rng, 9, 7)
    W = rng.normal(size=(7, 3)).astype(np.float32)
    G = rng.normal(size=(9, 3)).astype(np.float32)
    np.testing.assert_allclose(X.dot(W), dense @ W, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(X.tdot(G), dense.T @ G, rtol=1e-5, atol=1e-6)
    sub = X.rows(np.array([4, 1, 0]))
    np.testing.assert_allclose(sub.dot(W), dense[[4, 1, 0]] @ W, rtol=1e-5, atol=1e-6)


def test_tfidf_rows_are_unit_length_and_sublinear():
    indptr, indices = np.array([0, 2, 2, 3]), np.array([0, 1, 1])
    counts = np.array([1.0, np.e, 5.0], np.float32)
    idf = smooth_idf(np.array([1.0, 2.0]), 3)
    vals = tfidf_values(indptr, indices, counts, idf)
    row0 = np.array([1.0 * idf[0], 2.0 * idf[1]])
    np.testing.assert_allclose(vals[:2], row0 / np.linalg.norm(row0), rtol=1e-5)
    assert vals[2] == pytest.approx(1.0)


def test_lbfgs_solves_a_quadratic():
    A = np.array([[3.0, 1.0], [1.0, 2.0]])
    b = np.array([1.0, -1.0])
    x, f, it = minimize(lambda x: (0.5 * x @ A @ x - b @ x, A @ x - b), np.zeros(2), tol=1e-10)
    np.testing.assert_allclose(x, np.linalg.solve(A, b), atol=1e-6)
    assert it < 50


def test_decide_weighs_cost_extra_and_exclusions():
    s, c = np.array([0.8, 0.7, 0.2]), np.array([10.0, 2.0, 1.0])
    assert decide(s, c) == 0
    assert decide(s, c, cost_weight=0.05) == 1            # 0.3 vs 0.6 vs 0.15
    assert decide(s, c, extra=np.array([0.0, 0.2, 0.0])) == 0
    assert decide(s, c, extra=np.array([0.3, 0.0, 0.0])) == 1
    assert decide(s, c, allowed=np.array([False, False, True])) == 2
    assert decide(np.array([0.5, 0.5]), np.array([3.0, 1.0])) == 1  # tie: the cheaper
    with pytest.raises(ConfigError):
        decide(s, c, allowed=np.zeros(3, bool))


class _Fixed(Router):
    """A router whose scores are a lookup table (to test the shared decision on the base)."""

    def __init__(self, table, experts, costs):
        super().__init__(experts, costs)
        self.table = table

    def scores(self, prompt):
        return self.table[int(prompt)]


@pytest.mark.parametrize("budget", [1.0, 1.7, 2.5, 4.0])
def test_batch_budget_is_never_exceeded_and_spread_over_the_batch(budget):
    rng = np.random.default_rng(int(budget * 10))
    table = rng.random((200, 3))
    router = _Fixed(table, ["big", "mid", "small"], [5.0, 2.0, 1.0])
    decisions = router.route_batch([str(i) for i in range(200)], max_mean_cost=budget)
    spent = np.mean([router.costs[d.index] for d in decisions])
    assert spent <= budget + 1e-9
    if budget < 4.0:  # the budget binds: it is nearly all used, not left idle
        assert spent >= budget - 0.05
    # The last prompts are not all forced to the cheapest expert: the weight spreads the budget.
    late = [d.expert for d in decisions[-20:]]
    assert budget == 1.0 or late.count("small") < 20


def test_paper_rule_excludes_what_would_make_the_rest_unaffordable():
    b = Budget(2.0, np.array([5.0, 1.0]), total=3)   # 6 in all, the cheapest costs 1
    assert b.allowed().tolist() == [False, True]      # 5 + 2 x 1 > 6
    b.spend(1)
    assert b.allowed().tolist() == [False, True]      # 1 + 5 + 1 > 6
    b.spend(1)
    assert b.allowed().tolist() == [False, True]      # 2 + 5 > 6
    session = Budget(3.0, np.array([5.0, 1.0]))       # open-ended: the running mean
    assert session.allowed().tolist() == [False, True]
    session.spend(1)
    assert session.allowed().tolist() == [True, True]  # (1 + 5) / 2 = 3
    with pytest.raises(ConfigError, match="below the cheapest"):
        Budget(0.5, np.array([5.0, 1.0]))


def test_greedy_rule_alone_keeps_the_budget_with_adversarial_scores():
    router = _Fixed(np.tile([0.9, 0.1], (50, 1)), ["big", "small"], [4.0, 1.0])
    b = Budget(2.0, router.costs, total=50)
    for i in range(50):
        router.route(str(i), budget=b)
    assert b.mean_cost <= 2.0 + 1e-9 and b.mean_cost > 1.9


def test_lagrange_weight_is_the_smallest_that_fits():
    rng = np.random.default_rng(3)
    P, c = rng.random((100, 3)), np.array([3.0, 2.0, 1.0])
    w = lagrange_weight(P, c, 1.8)
    assert c[np.argmax(P - w * c, axis=1)].mean() <= 1.8 + 1e-9
    assert c[np.argmax(P - 0.98 * w * c, axis=1)].mean() > 1.8
    assert lagrange_weight(P, c, 3.0) == 0.0


def test_hull_area_of_a_line_and_a_dominated_point():
    assert hull_area([(0.0, 0.2), (1.0, 0.6)], 0.0, 1.0) == pytest.approx(0.4)
    # a point under the hull changes nothing; flat after the best point
    assert hull_area([(0.0, 0.2), (0.5, 0.3), (1.0, 0.6)], 0.0, 2.0) == pytest.approx(0.5)


def test_evaluate_reports_best_single_oracle_and_the_match_cost():
    S = np.array([[1, 0], [1, 0], [0, 1], [0, np.nan]], dtype=float)
    costs = np.array([4.0, 1.0])
    perfect = np.nan_to_num(S)
    rep = evaluate(perfect, S, costs, ["a", "b"])
    assert rep["best_single"] == {"expert": "a", "accuracy": 0.5, "mean_cost": 4.0}
    assert rep["oracle"]["accuracy"] == pytest.approx(0.75)
    # the last question was run on a only, so only a can be scored there
    assert rep["oracle"]["mean_cost"] == pytest.approx((4 + 4 + 1 + 4) / 4)
    assert rep["policy"]["accuracy"] == pytest.approx(0.75)
    assert rep["cost_to_match_best_single"] == pytest.approx(3.25)
    assert rep["aiq"] >= rep["aiq_single_experts"]
    assert rep["curve"][0]["cost_weight"] == 0.0 and rep["curve"][-1]["mean_cost"] == 1.0 + 0.75


def test_pair_loss_rewards_the_right_order_and_ignores_ties():
    from leeroo_local.policy.model import pair_loss

    Y = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, np.nan], [0.5, 0.5, 0.5]])
    right = np.array([[0.9, 0.1, 0.1], [0.2, 0.8, 0.5], [0.1, 0.9, 0.5]])
    wrong = right[:, [1, 0, 2]]
    assert pair_loss(right, Y) < np.log(2) < pair_loss(wrong, Y)
    assert np.isnan(pair_loss(right[:, :1], Y[:, :1]))  # one expert: no pairs
