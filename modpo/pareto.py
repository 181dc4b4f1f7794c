"""Pareto fronts, hypervolume and weight grids, as pure functions over arrays.

Objectives each have a direction (maximize or minimize). Non-dominance and hypervolume are
computed by moocore, which handles any number of objectives.
"""
from __future__ import annotations

import itertools
from typing import Sequence

import moocore
import numpy as np


def _check_points(points, maximize: Sequence[bool]) -> np.ndarray:
    pts = np.asarray(points, dtype=float)
    if pts.ndim != 2:
        raise ValueError(f"points must be a 2-D array (N points, n objectives), got shape {pts.shape}")
    if len(maximize) != pts.shape[1]:
        raise ValueError(f"maximize has {len(maximize)} entries but points have {pts.shape[1]} objectives")
    if not np.isfinite(pts).all():
        raise ValueError("points contain NaN or inf; drop unevaluated adapters before computing the front")
    return pts


def pareto_mask(points, maximize: Sequence[bool]) -> np.ndarray:
    """Non-dominated mask. points: (N, n); maximize: n directions. Returns bool (N,).

    A point is on the front when no other point is at least as good on every objective and
    strictly better on one. Duplicates of a front point are all on the front (neither dominates).
    """
    pts = _check_points(points, maximize)
    if len(pts) == 0:
        return np.zeros(0, dtype=bool)
    return np.asarray(moocore.is_nondominated(pts, maximise=list(maximize), keep_weakly=True), dtype=bool)


def hypervolume(points, reference_point, maximize: Sequence[bool]) -> float:
    """Volume of objective space dominated by points and bounded by reference_point.

    points: (N, n); reference_point: (n,) a point worse than every point of interest on every
    objective (points not strictly better than it contribute nothing). Returns a float >= 0.
    """
    pts = _check_points(points, maximize)
    ref = np.asarray(reference_point, dtype=float)
    if ref.shape != (pts.shape[1],) or not np.isfinite(ref).all():
        raise ValueError(f"reference_point must be {pts.shape[1]} finite numbers, got {reference_point!r}")
    if len(pts) == 0:
        return 0.0
    return float(moocore.hypervolume(pts, ref=ref, maximise=list(maximize)))


def default_reference_point(points, maximize: Sequence[bool], pad: float = 0.1) -> np.ndarray:
    """A reference point just worse than the worst point on each objective (pad * range beyond it)."""
    pts = _check_points(points, maximize)
    lo, hi = pts.min(0), pts.max(0)
    span = np.where(hi > lo, hi - lo, 1.0)
    return np.where(np.asarray(maximize), lo - pad * span, hi + pad * span)


def bootstrap_hypervolume_ratio(a_scores, b_scores, maximize: Sequence[bool], draws: int = 300,
                                seed: int = 0) -> np.ndarray:
    """How sure is "set b has r x set a's hypervolume"? The ratio hypervolume(b) / hypervolume(a) of the
    points' mean scores, recomputed on prompts resampled with replacement: one draw of prompts for every
    point (they answered the same prompts), the reference point recomputed per draw over both sets
    (default_reference_point), as the plug-in ratio takes it.

    a_scores: (n_a, n_prompts, n) and b_scores: (n_b, n_prompts, n), every point's score per prompt and
    objective. Returns (draws,) ratios; NaN in a draw where set a's hypervolume is 0 or a mean is not finite
    (scores near the float limit, as a stranger's eval.json may hold).
    """
    a, b = np.asarray(a_scores, dtype=float), np.asarray(b_scores, dtype=float)
    if a.ndim != 3 or b.ndim != 3 or a.shape[1:] != b.shape[1:] or min(a.shape[:2] + b.shape[:1]) == 0:
        raise ValueError(f"scores must be (points, prompts, objectives) arrays over the same prompts and "
                         f"objectives, got {a.shape} and {b.shape}")
    rng = np.random.default_rng(seed)
    n_prompts = a.shape[1]
    ratios = np.empty(draws)
    for i in range(draws):
        idx = rng.integers(0, n_prompts, n_prompts)
        with np.errstate(over="ignore", invalid="ignore"):
            mean_a, mean_b = a[:, idx].mean(1), b[:, idx].mean(1)  # (n_a, n), (n_b, n)
            both = np.vstack([mean_a, mean_b])
            ref = default_reference_point(both, maximize) if np.isfinite(both).all() else None
        if ref is None or not np.isfinite(ref).all():
            ratios[i] = np.nan
            continue
        hv_a = hypervolume(mean_a, ref, maximize)
        ratios[i] = hypervolume(mean_b, ref, maximize) / hv_a if hv_a > 0 else np.nan
    return ratios


def front_order(points, mask: np.ndarray, axis: int = 0) -> np.ndarray:
    """Indices of the front points sorted along one objective, for drawing the front as a line."""
    pts = np.asarray(points, dtype=float)
    idx = np.flatnonzero(mask)
    return idx[np.argsort(pts[idx, axis], kind="stable")]


def weight_grid(n_objectives: int, step: float = 0.1, interior: bool = True) -> list[tuple[float, ...]]:
    """All weightings on the simplex with entries in multiples of step.

    interior=True keeps only weightings with every entry > 0 (the MODPO points between the
    single-objective ends). Weights are rounded to 10 decimals so they print and compare cleanly.
    """
    if n_objectives < 1:
        raise ValueError(f"n_objectives must be >= 1, got {n_objectives}")
    k = round(1 / step)
    if not (0 < step <= 1) or abs(k * step - 1) > 1e-9:
        raise ValueError(f"step must divide 1 into whole parts (e.g. 0.1, 0.25), got {step}")
    grid = []
    for parts in itertools.product(range(k + 1), repeat=n_objectives - 1):
        last = k - sum(parts)
        if last < 0:
            continue
        counts = (*parts, last)
        if interior and min(counts) == 0:
            continue
        grid.append(tuple(round(c / k, 10) for c in counts))
    return sorted(grid, reverse=True)


def suggest_weighting(existing: list[Sequence[float]], n_objectives: int, target_index: int,
                      step: float = 0.05) -> tuple[float, ...]:
    """The weighting on a grid of step that is farthest (L1) from every existing one, with the target's
    weight > 0: the widest gap in a family's sweep, a good default for its next point."""
    candidates = [w for w in weight_grid(n_objectives, step, interior=False) if w[target_index] > 0]
    if not existing:
        return min(candidates, key=lambda w: sum(abs(x - 1 / n_objectives) for x in w))
    have = np.asarray(existing, dtype=float)
    return max(candidates, key=lambda w: (float(np.abs(have - np.asarray(w)).sum(1).min()), -abs(w[0] - w[-1])))
