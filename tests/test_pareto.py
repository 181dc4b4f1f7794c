"""modpo/pareto.py: known fronts, ties and duplicates, mixed directions, 2 and 3 objectives."""
import numpy as np
import pytest

from modpo.pareto import (
    bootstrap_hypervolume_ratio,
    default_reference_point,
    front_order,
    hypervolume,
    pareto_mask,
    weight_grid,
)


def test_known_front_two_objectives_maximize():
    pts = [[1, 5], [2, 4], [3, 3], [2, 2], [0, 0], [3, 1]]
    assert pareto_mask(pts, [True, True]).tolist() == [True, True, True, False, False, False]


def test_minimize_flips_the_front():
    pts = [[1, 5], [2, 4], [3, 3], [2, 2], [0, 0]]
    assert pareto_mask(pts, [False, False]).tolist() == [False, False, False, False, True]


def test_mixed_directions():
    # maximize quality, minimize length
    pts = [[0.9, 100], [0.8, 50], [0.85, 120], [0.5, 10], [0.4, 20]]
    assert pareto_mask(pts, [True, False]).tolist() == [True, True, False, True, False]


def test_ties_and_duplicates():
    pts = [[1, 2], [1, 2], [2, 1], [1, 1], [2, 1]]
    # duplicates of a front point are both on the front; [1, 1] is weakly dominated by [1, 2]
    assert pareto_mask(pts, [True, True]).tolist() == [True, True, True, False, True]
    # equal on one objective, better on the other: dominated
    assert pareto_mask([[1, 2], [1, 3]], [True, True]).tolist() == [False, True]


def test_three_objectives():
    pts = [[1, 0, 0], [0, 1, 0], [0, 0, 1], [0.5, 0.5, 0.5], [0.4, 0.4, 0.4], [1, 1, 0]]
    assert pareto_mask(pts, [True] * 3).tolist() == [False, False, True, True, False, True]


def test_hypervolume_two_objectives_by_hand():
    # staircase [1,3], [2,2], [3,1] vs ref (0,0): 1*3 + 1*2 + 1*1 = 6
    assert hypervolume([[1, 3], [2, 2], [3, 1]], [0, 0], [True, True]) == pytest.approx(6.0)
    # minimization with ref (4, 4): (4-1)*(4-3) + (4-2)*(3-2) + (4-3)*(2-1) = 3 + 2 + 1
    assert hypervolume([[1, 3], [2, 2], [3, 1]], [4, 4], [False, False]) == pytest.approx(6.0)
    # mixed: maximize x from ref 0, minimize y from ref 4
    assert hypervolume([[1, 1], [2, 3]], [0, 4], [True, False]) == pytest.approx(1 * 3 + 1 * 1)


def test_hypervolume_ignores_dominated_and_duplicates():
    base = hypervolume([[1, 3], [3, 1]], [0, 0], [True, True])
    assert base == pytest.approx(3 + 2 * 1)
    assert hypervolume([[1, 3], [3, 1], [1, 1], [3, 1]], [0, 0], [True, True]) == pytest.approx(base)


def test_hypervolume_three_objectives():
    # two boxes [0,2]x[0,1]x[0,1] and [0,1]x[0,2]x[0,1] overlap in a unit cube: 2 + 2 - 1
    assert hypervolume([[2, 1, 1], [1, 2, 1]], [0, 0, 0], [True] * 3) == pytest.approx(3.0)


def test_bad_input():
    with pytest.raises(ValueError, match="2-D"):
        pareto_mask([1, 2, 3], [True])
    with pytest.raises(ValueError, match="maximize has 1"):
        pareto_mask([[1, 2]], [True])
    with pytest.raises(ValueError, match="NaN"):
        pareto_mask([[1, np.nan]], [True, True])
    with pytest.raises(ValueError, match="reference_point"):
        hypervolume([[1, 2]], [0], [True, True])


def test_reference_point_and_order():
    pts = np.array([[1.0, 3.0], [3.0, 1.0], [2.0, 2.0]])
    ref = default_reference_point(pts, [True, False])
    assert ref[0] < 1.0 and ref[1] > 3.0
    assert front_order(pts, np.array([True, True, False])).tolist() == [0, 1]


def test_weight_grid():
    assert weight_grid(2, 0.25) == [(0.75, 0.25), (0.5, 0.5), (0.25, 0.75)]
    grid3 = weight_grid(3, 0.25)
    assert len(grid3) == 3 and all(abs(sum(w) - 1) < 1e-9 and min(w) > 0 for w in grid3)
    assert len(weight_grid(2, 0.5, interior=False)) == 3
    with pytest.raises(ValueError, match="divide 1"):
        weight_grid(2, 0.3)


def test_suggest_weighting_fills_the_widest_gap():
    from modpo.pareto import suggest_weighting
    existing = [(1.0, 0.0), (0.5, 0.5), (0.9, 0.1)]
    assert suggest_weighting(existing, 2, target_index=0) == (0.05, 0.95)  # target weight > 0, far from all
    assert suggest_weighting([], 2, target_index=0) == (0.5, 0.5)
    w = suggest_weighting([(1 / 3, 1 / 3, 1 / 3)], 3, target_index=2)
    assert w[2] > 0 and abs(sum(w) - 1) < 1e-9 and max(w) >= 0.9


def test_bootstrap_hypervolume_ratio():
    """One resample of prompts for every point, the reference point recomputed per draw."""
    rng = np.random.default_rng(1)
    a = rng.normal(size=(4, 50, 3))  # 4 points, 50 prompts, 3 objectives
    maximize = [True, True, False]
    same = bootstrap_hypervolume_ratio(a, a.copy(), maximize, draws=40)
    assert same.shape == (40,) and np.allclose(same, 1.0)
    worse = bootstrap_hypervolume_ratio(a, a - np.array([0.3, 0.3, -0.3]), maximize, draws=40)
    assert (worse < 1).all()  # worse by a constant on every prompt: smaller in every draw
    again = bootstrap_hypervolume_ratio(a, a - np.array([0.3, 0.3, -0.3]), maximize, draws=40)
    other = bootstrap_hypervolume_ratio(a, a - np.array([0.3, 0.3, -0.3]), maximize, draws=40, seed=1)
    assert np.array_equal(worse, again) and not np.array_equal(worse, other)
    one = a[:, :1]  # one prompt: every draw is the plug-in ratio
    ref = default_reference_point(np.vstack([one[:, 0], one[:2, 0]]), maximize)
    plug_in = hypervolume(one[:2, 0], ref, maximize) / hypervolume(one[:, 0], ref, maximize)
    assert np.allclose(bootstrap_hypervolume_ratio(one, one[:2], maximize, draws=5), plug_in)
    huge = a.copy()
    huge[0] = 1.7e308  # a stranger's scores at the float limit: their means overflow, those draws are NaN
    assert np.isnan(bootstrap_hypervolume_ratio(huge, a, maximize, draws=3)).all()
    with pytest.raises(ValueError, match=r"over the same prompts and objectives, got \(4, 50, 3\) and \(4, 49, 3\)"):
        bootstrap_hypervolume_ratio(a, a[:, 1:], maximize)
