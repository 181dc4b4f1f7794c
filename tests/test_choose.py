"""modpo/choose.py: the Bradley-Terry posterior over the weighting, checked against hand-computed numbers."""
import math

import numpy as np
import pytest

from modpo import choose


def test_simplex_grid_covers_the_simplex_once():
    grid = choose.simplex_grid(3, 10)
    assert grid.shape == (math.comb(12, 2), 3)
    np.testing.assert_allclose(grid.sum(1), 1.0)
    assert (grid >= 0).all() and len({tuple(np.round(g, 9)) for g in grid}) == len(grid)
    assert choose.simplex_grid(2, 4).tolist() == [[1, 0], [0.75, 0.25], [0.5, 0.5], [0.25, 0.75], [0, 1]]


def test_standardize_flips_minimized_objectives():
    scores = np.array([[1.0, 10.0], [3.0, 30.0]])
    center, scale = choose.standardize(scores, [True, False])
    np.testing.assert_allclose(center, [2.0, 20.0])
    np.testing.assert_allclose(scale, [1.0, -10.0])  # z of a minimized objective: higher is better
    np.testing.assert_allclose((scores - center) / scale, [[-1, 1], [1, -1]])
    with pytest.raises(ValueError, match="N >= 2"):
        choose.standardize([[1.0, 2.0]], [True, True])


def test_log_likelihood_by_hand():
    grid = np.array([[1.0, 0.0], [0.5, 0.5]])
    diffs = np.array([[2.0, -1.0]])
    # w = (1, 0): utility 2, kappa 1: log sigma(2); tie at w = (.5, .5): utility .5 -> .5 log s(.5) + .5 log s(-.5)
    ll_win = choose.log_likelihood(grid, [1.0], diffs, [1.0])
    np.testing.assert_allclose(ll_win[0], [math.log(1 / (1 + math.exp(-2))), math.log(1 / (1 + math.exp(-0.5)))])
    ll_tie = choose.log_likelihood(grid, [1.0], diffs, [0.5])
    half = 0.5 * math.log(1 / (1 + math.exp(-0.5))) + 0.5 * math.log(1 / (1 + math.exp(0.5)))
    assert ll_tie[0, 1] == pytest.approx(half)
    assert ll_tie[0, 1] > ll_tie[0, 0], "a tie favours the weighting that values the two answers most alike"


def test_posterior_without_votes_is_the_flat_prior():
    post = choose.posterior(np.zeros((0, 3)), np.zeros(0), 3, steps=10)
    np.testing.assert_allclose(post.weights, 1 / len(post.grid))
    np.testing.assert_allclose(post.mean, [1 / 3] * 3, atol=1e-9)
    assert post.credible(0.9).mean() == pytest.approx(0.9, abs=0.02)


def test_posterior_finds_a_hidden_weighting_and_shrinks():
    rng = np.random.default_rng(0)
    hidden = np.array([0.6, 0.3, 0.1])
    diffs = rng.normal(size=(200, 3))
    outcomes = (rng.random(200) < 1 / (1 + np.exp(-4 * diffs @ hidden))).astype(float)
    few, many = choose.posterior(diffs[:10], outcomes[:10], 3), choose.posterior(diffs, outcomes, 3)
    assert np.abs(many.mean - hidden).sum() < 0.12
    assert np.abs(many.mean - hidden).sum() < np.abs(few.mean - hidden).sum()
    assert many.credible().sum() < few.credible().sum(), "more votes, a smaller credible region"
    assert many.credible()[np.argmin(np.abs(many.grid - hidden).sum(1))], "the truth is in the region"
    assert many.joint.sum(1)[list(many.kappas).index(4.0)] > 0.3, "the voter's consistency is learned too"


def test_information_gain_prefers_pairs_that_split_the_posterior():
    post = choose.posterior(np.zeros((0, 2)), np.zeros(0), 2, steps=20)
    gain = choose.information_gain(post, np.array([[0.0, 0.0], [1.0, 1.0], [1.0, -1.0]]))
    assert gain[0] == pytest.approx(0.0, abs=1e-9), "identical answers teach nothing"
    assert gain[1] < gain[2], "a pair every weighting ranks alike is less informative than a trade-off"
    assert (gain >= -1e-12).all()


def test_nearest_point_by_l1():
    assert choose.nearest([0.5, 0.5], {"a": (1.0, 0.0), "b": (0.4, 0.6)}) == ("b", pytest.approx(0.2))
    assert choose.nearest([0.5, 0.5], {}) is None


def test_widest_pairs_keeps_the_largest_differences_in_their_order():
    diffs = np.array([[0.1, 0.0], [3.0, 4.0], [0.0, -2.0], [1.0, 1.0], [-0.5, 0.0]])  # norms 0.1 5 2 1.41 0.5
    assert choose.widest_pairs(diffs, limit=3).tolist() == [1, 2, 3]
    assert choose.widest_pairs(diffs, limit=10).tolist() == [0, 1, 2, 3, 4], "a small pool is kept whole"
    many = np.random.default_rng(0).normal(size=(choose.MAX_CANDIDATES + 50, 3))
    kept = choose.widest_pairs(many)
    assert len(kept) == choose.MAX_CANDIDATES
    dropped = np.setdiff1d(np.arange(len(many)), kept)
    assert np.linalg.norm(many[dropped], axis=1).max() <= np.linalg.norm(many[kept], axis=1).min()
