"""The MODPO and DPO losses and sequence log-probs, as pure functions.

Equation numbers refer to Zhou et al. 2023, "Beyond One-Preference-Fits-All Alignment:
Multi-Objective Direct Preference Optimization" (arXiv 2310.03708), and to Rafailov et al. 2023
("DPO", arXiv 2305.18290). Nothing here does I/O or holds state.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .weights import check_beta, validate_simplex_weights, validate_weights

IGNORE_INDEX = -100


def sequence_logps(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Summed log-prob of each sequence's response tokens.

    logits: (B, T, V) from a causal LM run on input_ids (B, T).
    labels: (B, T) equal to input_ids on response tokens (EOS included) and IGNORE_INDEX on the
        prompt and padding. Position t of logits predicts token t + 1, hence the shift.
    Returns (B,) float32: sum_t log p(y_t | x, y_<t) over the response only.
    """
    if logits.shape[:2] != labels.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and labels {tuple(labels.shape)} disagree on (B, T)")
    logits = logits[:, :-1, :].float()  # (B, T-1, V)
    labels = labels[:, 1:]  # (B, T-1)
    mask = labels != IGNORE_INDEX
    safe_labels = labels.masked_fill(~mask, 0)
    # log_softmax + gather, not cross_entropy on a flattened view: same numbers, clearer shapes.
    token_logps = torch.gather(logits.log_softmax(-1), 2, safe_labels.unsqueeze(-1)).squeeze(-1)  # (B, T-1)
    return (token_logps * mask).sum(-1)


def response_window(labels: torch.Tensor) -> int:
    """How many trailing positions of a (B, T) batch the response log-probs need.

    The first response token of any row sits at index f >= 1 and is predicted by position f - 1, so
    positions [f_min - 1, T) hold every logit sequence_logps reads. Returns T - (f_min - 1).
    """
    is_response = labels != IGNORE_INDEX  # (B, T)
    if not is_response.any():
        return labels.shape[1]
    first = int(is_response.float().argmax(-1)[is_response.any(-1)].min())
    return labels.shape[1] - max(first - 1, 0)


def model_sequence_logps(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor,
                         **model_kwargs) -> torch.Tensor:
    """sequence_logps of a causal LM's own forward, with the LM head run on the response window only.

    input_ids, attention_mask, labels: (B, T). The prompt positions before the window never reach
    the (V x d) head and the log-softmax over V, which are a fifth of a small model's step: exact, as
    the head is applied position by position (transformers' logits_to_keep).
    Returns (B,) float32.
    """
    keep = response_window(labels)
    logits = model(input_ids=input_ids, attention_mask=attention_mask, logits_to_keep=keep,
                   **model_kwargs).logits  # (B, keep, V)
    return sequence_logps(logits, labels[:, labels.shape[1] - keep:])


def _check_logps(**tensors: torch.Tensor) -> int:
    sizes = set()
    for name, t in tensors.items():
        if not isinstance(t, torch.Tensor) or t.dim() != 1:
            shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise ValueError(f"{name} must be a 1-D tensor of shape (B,), got {shape}")
        if not torch.isfinite(t).all():
            raise ValueError(f"{name} contains NaN or inf; check the log-prob computation for that batch")
        sizes.add(t.shape[0])
    if len(sizes) != 1:
        raise ValueError(f"log-prob tensors disagree on batch size: {sorted(sizes)}")
    return sizes.pop()


def _check_beta(beta: float) -> None:
    check_beta(beta)


def check_weights(weights, n_objectives: int | None = None) -> torch.Tensor:
    """Validate a weighting of the objectives, target objective first; returns it as float64 (n,).

    MODPO divides by the target weight (Eq. 7), so weights[0] must be > 0; the weights must lie on
    the simplex (w_i >= 0, sum 1). The w_0 = 0 end of the front is the margin model itself.
    """
    if isinstance(weights, torch.Tensor):
        if weights.dim() != 1:
            raise ValueError(f"weights must be a 1-D list of per-objective weights, got shape {tuple(weights.shape)}")
        weights = weights.tolist()
    return torch.tensor(validate_weights(weights, n_objectives), dtype=torch.float64)


def check_weight_rows(weights: torch.Tensor, batch: int, n_objectives: int, target_rule: bool = True) -> torch.Tensor:
    """(B, n) per-example weightings, each checked as check_weights checks one (float64); target_rule False:
    any entry may be 0 (no divisor: modpo_mixture_loss)."""
    if weights.shape != (batch, n_objectives):
        raise ValueError(f"per-example weights must have shape (B, n) = ({batch}, {n_objectives}), "
                         f"got {tuple(weights.shape)}")
    w = weights.detach().to(torch.float64)
    if not torch.isfinite(w).all() or (w < 0).any() or ((w.sum(-1) - 1).abs() > 1e-6).any():
        raise ValueError("every row of per-example weights must be finite, >= 0 and sum to 1")
    if target_rule and (w[:, 0] <= 0).any():
        raise ValueError("the target objective's weight (column 0) must be > 0 in every row: MODPO divides by it")
    return weights.to(torch.float64)


def dpo_loss(policy_chosen_logps: torch.Tensor, policy_rejected_logps: torch.Tensor,
             reference_chosen_logps: torch.Tensor, reference_rejected_logps: torch.Tensor,
             beta: float) -> torch.Tensor:
    """Per-example DPO loss (DPO Eq. 7): -log sigmoid(beta * (h(y_w) - h(y_l))).

    All inputs (B,) summed response log-probs; h(y) = log pi(y|x) - log pi_ref(y|x).
    Returns (B,).
    """
    _check_logps(policy_chosen_logps=policy_chosen_logps, policy_rejected_logps=policy_rejected_logps,
                 reference_chosen_logps=reference_chosen_logps,
                 reference_rejected_logps=reference_rejected_logps)
    _check_beta(beta)
    chosen_logratios = policy_chosen_logps - reference_chosen_logps  # (B,)
    rejected_logratios = policy_rejected_logps - reference_rejected_logps  # (B,)
    return -F.logsigmoid(beta * (chosen_logratios - rejected_logratios))


def modpo_loss(policy_chosen_logps: torch.Tensor, policy_rejected_logps: torch.Tensor,
               reference_chosen_logps: torch.Tensor, reference_rejected_logps: torch.Tensor,
               margin_chosen_rewards: torch.Tensor, margin_rejected_rewards: torch.Tensor,
               weights, beta: float, chosen_probs: torch.Tensor | None = None) -> torch.Tensor:
    """Per-example MODPO loss (MODPO Eq. 7).

    policy_*_logps, reference_*_logps: (B,) summed response log-probs.
    margin_*_rewards: (B, n-1) rewards r_j(x, y) of the n-1 non-target objectives (higher is
        better, on the beta * log-ratio scale), for the chosen and rejected responses.
    weights: (n,) on the simplex, weights[0] = the target objective (whose labels made the pairs); or
        (B, n), one weighting per example (a weight-conditioned adapter trained over the simplex: each
        row's loss is this loss at that row's weighting).
    Returns (B,):
        -log sigmoid( (1 / w_0) * [ beta * (h(y_w) - h(y_l)) - sum_j w_j * (r_j(y_w) - r_j(y_l)) ] )
    With weights = (1, 0, ..., 0) this is exactly dpo_loss.
    chosen_probs: (B,) optional, the probability that the chosen response is preferred when the labels are
        Bradley-Terry draws of a known reward, p = sigmoid(r_0(y_w) - r_0(y_l)) (feedback.py). The loss is
        then its expectation over the label, -[p log sigmoid(z) + (1 - p) log sigmoid(-z)] with z the logit
        above: the same optimum as the drawn labels, beta * (h(y_w) - h(y_l)) = w . (r(y_w) - r(y_l)) per
        pair, without the draw's noise. p = 1 is Eq. 7.
    """
    batch = _check_logps(policy_chosen_logps=policy_chosen_logps, policy_rejected_logps=policy_rejected_logps,
                         reference_chosen_logps=reference_chosen_logps,
                         reference_rejected_logps=reference_rejected_logps)
    _check_beta(beta)
    for name, m in (("margin_chosen_rewards", margin_chosen_rewards),
                    ("margin_rejected_rewards", margin_rejected_rewards)):
        if not isinstance(m, torch.Tensor) or m.dim() != 2 or m.shape[0] != batch:
            shape = tuple(m.shape) if isinstance(m, torch.Tensor) else type(m).__name__
            raise ValueError(f"{name} must have shape (B, n-1) = ({batch}, n-1), got {shape}")
        if not torch.isfinite(m).all():
            raise ValueError(f"{name} contains NaN or inf; recompute the margins for this dataset")
    if margin_chosen_rewards.shape != margin_rejected_rewards.shape:
        raise ValueError(f"margin_chosen_rewards {tuple(margin_chosen_rewards.shape)} and "
                         f"margin_rejected_rewards {tuple(margin_rejected_rewards.shape)} differ")
    n = 1 + margin_chosen_rewards.shape[1]
    if isinstance(weights, torch.Tensor) and weights.dim() == 2:
        w = check_weight_rows(weights, batch, n)  # (B, n)
    else:
        w = check_weights(weights, n_objectives=n)[None, :]  # (1, n)
    w = w.to(device=policy_chosen_logps.device, dtype=policy_chosen_logps.dtype)
    chosen_logratios = policy_chosen_logps - reference_chosen_logps  # (B,)
    rejected_logratios = policy_rejected_logps - reference_rejected_logps  # (B,)
    margin_diff = ((margin_chosen_rewards - margin_rejected_rewards).to(w.dtype) * w[:, 1:]).sum(-1)  # (B,)
    logits = (beta * (chosen_logratios - rejected_logratios) - margin_diff) / w[:, 0]  # (B,)
    if chosen_probs is None:
        return -F.logsigmoid(logits)
    if not isinstance(chosen_probs, torch.Tensor) or chosen_probs.shape != (batch,):
        shape = tuple(chosen_probs.shape) if isinstance(chosen_probs, torch.Tensor) else type(chosen_probs).__name__
        raise ValueError(f"chosen_probs must have shape (B,) = ({batch},), got {shape}")
    if not bool(((chosen_probs >= 0) & (chosen_probs <= 1)).all()):
        raise ValueError("chosen_probs must lie in [0, 1]: they are probabilities that the chosen response wins")
    p = chosen_probs.to(logits.dtype)
    return -(p * F.logsigmoid(logits) + (1 - p) * F.logsigmoid(-logits))


# The library's weighting of the mixture's terms: w_j^2 L_j (modpo_mixture_loss's docstring says why).
MIXTURE_TERM_POWER = 2


def modpo_mixture_loss(policy_chosen_logps: torch.Tensor, policy_rejected_logps: torch.Tensor,
                       reference_chosen_logps: torch.Tensor, reference_rejected_logps: torch.Tensor,
                       chosen_rewards: torch.Tensor, rejected_rewards: torch.Tensor,
                       weights, beta: float, term_power: int = MIXTURE_TERM_POWER) -> torch.Tensor:
    """Per-example MODPO loss on every objective's Bradley-Terry labels at once: sum_j w_j^k * L_j (k = term_power).

    L_j is MODPO Eq. 7 trained on objective j's labels, every other objective a margin, in its expectation
    over the label draw (modpo_loss with chosen_probs p_j = sigmoid(r_j(y_a) - r_j(y_b))). Each L_j has the
    same per-pair optimum, beta * (h(y_a) - h(y_b)) = w . (r(y_a) - r(y_b)) (the closed form pi_ref *
    exp(w . r / beta)), so any positive weighting of them has it too; an objective with w_j = 0 adds nothing.
    What the weighting changes is the gradient in x = beta * (h(y_a) - h(y_b)), since d L_j / dx =
    (sigma(z_j) - p_j) / w_j (one objective's labels alone: five times over at w_0 = 0.2):
      term_power 2 (the library's mixture): d/dx = sum_j w_j (sigma(z_j) - p_j). Each objective's labels pull in
        proportion to its weight, at most 1 in all, and the loss is continuous in w: near a vertex e_j it is
        that vertex's DPO.
      term_power 1: d/dx = sum_j (sigma(z_j) - p_j), at most 1 per objective with w_j > 0 whatever its weight
        (an objective at w_j = 0.01 pulls as hard as one at 0.99), so it jumps at every face of the simplex
        (measured on the demo, README; kept for that record).

    policy_*_logps, reference_*_logps: (B,) summed response log-probs of the pair's two answers (a, b).
    chosen_rewards, rejected_rewards: (B, n) every objective's true reward r_j of a and b (Bradley-Terry
        rewards in nats, higher is better), in the order of weights; the labels' probabilities come from them.
    weights: (n,) on the simplex in that order, any entry may be 0; or (B, n), one weighting per example (a
        weight-conditioned adapter trained over the simplex).
    Returns (B,):  sum_{j: w_j > 0} w_j^k * -[p_j log sigma(z_j) + (1 - p_j) log sigma(-z_j)],
        z_j = (x - sum_{i != j} w_i (r_i(y_a) - r_i(y_b))) / w_j = r_j(y_a) - r_j(y_b) + (x - w . dr) / w_j.
    """
    batch = _check_logps(policy_chosen_logps=policy_chosen_logps, policy_rejected_logps=policy_rejected_logps,
                         reference_chosen_logps=reference_chosen_logps,
                         reference_rejected_logps=reference_rejected_logps)
    _check_beta(beta)
    if term_power not in (1, 2):
        raise ValueError(f"term_power must be 1 or 2 (each objective's loss weighted by w_j or w_j^2), "
                         f"got {term_power!r}")
    if isinstance(weights, torch.Tensor) and weights.dim() == 2:  # one weighting per example: (B, n)
        w = check_weight_rows(weights, batch, weights.shape[1], target_rule=False).to(torch.float64)
    else:
        w = torch.tensor(validate_simplex_weights(weights), dtype=torch.float64)[None]  # (1, n)
    n = w.shape[1]
    for name, r in (("chosen_rewards", chosen_rewards), ("rejected_rewards", rejected_rewards)):
        if not isinstance(r, torch.Tensor) or r.shape != (batch, n):
            shape = tuple(r.shape) if isinstance(r, torch.Tensor) else type(r).__name__
            raise ValueError(f"{name} must have shape (B, n) = ({batch}, {n}): every objective's reward, got {shape}")
        if not torch.isfinite(r).all():
            raise ValueError(f"{name} contains NaN or inf; recompute the rewards for this dataset")
    w = w.to(device=policy_chosen_logps.device, dtype=policy_chosen_logps.dtype)
    x = beta * ((policy_chosen_logps - reference_chosen_logps) - (policy_rejected_logps - reference_rejected_logps))
    reward_diff = (chosen_rewards - rejected_rewards).to(w.dtype)  # (B, n)
    gap = x - (reward_diff * w).sum(-1)  # (B,): zero at the optimum
    used = w > 0
    logits = reward_diff + gap[:, None] / torch.where(used, w, torch.ones_like(w))  # (B, n): z_j (finite where w_j = 0)
    p = torch.sigmoid(reward_diff)  # (B, n): the labels' probability that a is preferred on j
    per_objective = -(p * F.logsigmoid(logits) + (1 - p) * F.logsigmoid(-logits))  # (B, n)
    return (per_objective * torch.where(used, w, torch.zeros_like(w)) ** term_power).sum(-1)


def implicit_rewards(policy_logps: torch.Tensor, reference_logps: torch.Tensor, beta: float) -> torch.Tensor:
    """DPO's implicit reward (DPO Eq. 5, up to the prompt-only term): beta * log(pi / pi_ref). (B,)."""
    _check_beta(beta)
    return beta * (policy_logps - reference_logps)
