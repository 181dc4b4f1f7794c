"""Weightings of the objectives and beta: validation, ids, and the loss's order (pure Python, no torch).

Weights live in family order (the order of family.json's objectives) everywhere on disk and in
the UI; the loss wants the target objective first (MODPO Eq. 7 divides by its weight).
"""
from __future__ import annotations

import math
from typing import Sequence

EVERY = "all"  # labels_from: every objective's labels at once, each weighted by its weight squared (loss_plan)
LARGEST = "largest"  # labels_from: each weighting on its heaviest objective's labels (the first on a tie; loss_plan)


def check_beta(beta) -> float:
    """beta as a float, or a ValueError: the KL strength must be a finite number > 0 (the one home of this rule)."""
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not math.isfinite(beta) or beta <= 0:
        raise ValueError(f"beta must be a finite number > 0 (the paper uses 0.1), got {beta!r}")
    return float(beta)


def validate_weights(weights: Sequence[float], n_objectives: int | None = None) -> list[float]:
    """The weights as floats, or a ValueError saying what is wrong. weights[0] is the target."""
    try:
        w = [float(x) for x in weights]
    except (TypeError, ValueError):
        raise ValueError(f"weights must be a 1-D list of per-objective weights, got {weights!r}") from None
    if not w:
        raise ValueError("weights is empty: give one weight per objective")
    if n_objectives is not None and len(w) != n_objectives:
        raise ValueError(f"weights has {len(w)} entries but there are {n_objectives} objectives; "
                         "give one weight per objective, target objective first")
    if not all(math.isfinite(x) for x in w):
        raise ValueError(f"weights must be finite numbers, got {w}")
    if any(x < 0 for x in w):
        raise ValueError(f"weights must be >= 0, got {w}")
    if abs(sum(w) - 1.0) > 1e-6:
        raise ValueError(f"weights must sum to 1 (a point on the simplex), got sum {sum(w):.6g} for {w}; "
                         "divide by their sum")
    if w[0] <= 0:
        raise ValueError("the target objective's weight (weights[0]) must be > 0: MODPO divides by it. "
                         "The weights[0] = 0 end of the front is the margin model itself")
    return w


def validate_simplex_weights(weights: Sequence[float]) -> list[float]:
    """A point of the simplex as floats (any entry may be 0), or a ValueError saying what is wrong."""
    try:
        w = [float(x) for x in weights]
    except (TypeError, ValueError):
        raise ValueError(f"weights must be a 1-D list of per-objective weights, got {weights!r}") from None
    if not w or not all(math.isfinite(x) and x >= 0 for x in w) or abs(sum(w) - 1.0) > 1e-6:
        raise ValueError(f"weights must be numbers >= 0 summing to 1 (a point on the simplex), got {w}")
    return w


def validate_simplex(weights: Sequence[float], objective_names: list[str]) -> list[float]:
    """Family-order weights checked to be a point of the simplex (no target rule: merges and mixes may sit
    anywhere the sources reach); a ValueError that names the objectives."""
    try:
        w = validate_simplex_weights(weights)
    except ValueError:
        w = None
    if w is None or len(w) != len(objective_names):
        raise ValueError(f"weights must be {len(objective_names)} numbers >= 0 summing to 1 "
                         f"(objectives {objective_names}), got {weights!r}")
    return w


def normalize(values: Sequence[float], decimals: int = 4) -> list[float]:
    """Non-negative numbers from a form scaled onto the simplex (rounded, summing to exactly 1); a
    ValueError for values that cannot be. Whether the target got a weight > 0 is target_first's check."""
    v = [float(x) for x in values]
    if any(not math.isfinite(x) or x < 0 for x in v):
        raise ValueError(f"weights must be numbers >= 0, got {v}")
    total = sum(v)
    if total <= 0:
        raise ValueError("at least one weight must be > 0 (they are scaled to sum to 1)")
    head = [round(x / total, decimals) for x in v[:-1]]
    return head + [round(1 - sum(head), decimals)]


def weights_id(weights: Sequence[float]) -> str:
    """Adapter id of a weighting in family order, e.g. (0.7, 0.3) -> 'w-0.70-0.30'."""
    return "w-" + "-".join(f"{float(w):.2f}" for w in weights)


def reorder(objective_names: list[str], first: str, values: Sequence) -> list:
    """Family-order values (weights, names) with `first`'s moved to the front, the others in family order (the
    loss's order, and a conditioned adapter's); no simplex rule (target_first adds MODPO's)."""
    w = list(values)
    if len(w) != len(objective_names):
        raise ValueError(f"weights has {len(w)} entries but the family has {len(objective_names)} objectives "
                         f"{objective_names}; give one weight per objective in that order")
    k = objective_names.index(first)
    return [w[k]] + [x for i, x in enumerate(w) if i != k]


def target_first(objective_names: list[str], target: str, weights: Sequence[float]) -> list[float]:
    """Family-order weights -> the loss's order (target first, then the others in family order), validated."""
    ordered = reorder(objective_names, target, weights)
    w = [float(x) for x in weights]
    k = objective_names.index(target)
    if all(math.isfinite(x) and x >= 0 for x in w) and abs(sum(w) - 1.0) <= 1e-6 and w[k] <= 0:
        raise ValueError(f"the target objective {target!r} must get a weight > 0: MODPO divides by it (the end where "
                         f"{target!r} has weight 0 is the margin model itself, and all the weight on one objective "
                         "is DPO on that objective's labels); got "
                         + ", ".join(f"{o} {x:g}" for o, x in zip(objective_names, w)))
    return validate_weights(ordered)


def no_target_reward(target: str, labelled: str) -> str:
    """Why a point cannot train on labelled's labels: the target's reward, its margin there, is unknown."""
    return (f"{labelled!r}'s labels can train a point only if the target {target!r} has a known reward to be its "
            "margin; this family's target labels were not drawn from a Bradley-Terry model of a scorer (family.json "
            f"labels.reward_scales), so train on the target's labels: give {target!r} a weight > 0 and drop "
            "--labels-from")


def loss_plan(objective_names: list[str], target: str, weights: Sequence[float],
              labels_from: str | None = None) -> tuple[str, list[float]]:
    """(objective whose labels train the point, the loss's weights) for a family-order weighting.

    A vertex e_j of another objective than the target is exactly DPO on D_j (DESIGN §1: w = e_k is DPO
    on D_k), so it trains on j's labels with weights (1,) and no margin; any other weighting is MODPO on
    the target's labels, target first (target_first, which refuses a zero target weight). A weighting that
    gives the target no weight (the face opposite its vertex) trains, like a vertex, on another objective's
    labels: those of the objective with the most weight (the first in family order on a tie), every other
    objective a margin (the target's at weight 0; sweep.margin_specs still asks that its reward be known).
    labels_from: train an interior weighting on this objective's labels instead, with every other
    objective (the family's target included) as a margin, this objective's weight first. The optimum is
    the same, pi_ref * exp(w . r / beta), wherever the margins are the true rewards (a Bradley-Terry-
    labelled family); the divisor w_labels_from changes, and with it the optimization.
    labels_from LARGEST ("largest"): each weighting on the labels of the objective with the most weight (the
    first in family order on a tie), so the loss divides by a weight of at least 1/n; what a weighting without
    the target does anyway.
    labels_from EVERY ("all"): every objective's labels, each loss weighted by its weight squared
    (loss.modpo_mixture_loss); returns (EVERY, the weights in family order).
    """
    w = [float(x) for x in weights]
    if len(w) == len(objective_names) and min(w) >= 0 and max(w) == 1.0 and sum(w) == 1.0 \
            and objective_names[w.index(1.0)] != target:
        return objective_names[w.index(1.0)], [1.0]
    if labels_from == EVERY:
        if EVERY in objective_names:
            raise ValueError(f"an objective is named {EVERY!r}, so labels_from {EVERY!r} is ambiguous; rename it")
        if len(w) == len(objective_names) and max(w, default=0) == 1.0:  # the target's vertex: DPO on its labels
            return target, target_first(objective_names, target, w)
        return EVERY, validate_simplex(w, objective_names)
    if labels_from == LARGEST and LARGEST in objective_names:
        raise ValueError(f"an objective is named {LARGEST!r}, so labels_from {LARGEST!r} is ambiguous; rename it")
    no_target = labels_from is None and target in objective_names and len(w) == len(objective_names) \
        and w[objective_names.index(target)] == 0
    if (labels_from == LARGEST or no_target) and len(w) == len(objective_names) and max(w, default=0) > 0:
        labels_from = objective_names[w.index(max(w))]  # validated below, with every other weighting
    elif labels_from == LARGEST:
        labels_from = target  # a malformed weighting: target_first says what is wrong
    if labels_from is None or labels_from == target:
        return target, target_first(objective_names, target, w)
    if labels_from not in objective_names:
        raise ValueError(f"labels_from {labels_from!r} is not one of the objectives {objective_names}")
    return labels_from, target_first(objective_names, labels_from, w)
