"""modpo/loss.py: hand-computed values, the DPO identity, gradients, validation, and the closed form."""
import math

import pytest
import torch

from modpo.loss import IGNORE_INDEX, check_weights, dpo_loss, modpo_loss, sequence_logps


def t(*xs):
    return torch.tensor(xs, dtype=torch.float64)


def test_dpo_loss_hand_computed():
    # h(y_w) = -1 - -1.5 = 0.5, h(y_l) = -2 - -1.5 = -0.5; logit = 0.1 * 1.0
    loss = dpo_loss(t(-1.0), t(-2.0), t(-1.5), t(-1.5), beta=0.1)
    torch.testing.assert_close(loss, t(math.log1p(math.exp(-0.1))))


def test_modpo_loss_hand_computed():
    # logit = (0.1 * 1.0 - 0.5 * (0.3 - 0.1)) / 0.5 = 0  ->  log 2
    loss = modpo_loss(t(-1.0), t(-2.0), t(-1.5), t(-1.5), t(0.3)[:, None], t(0.1)[:, None], [0.5, 0.5], beta=0.1)
    torch.testing.assert_close(loss, t(math.log(2)))
    # three objectives: (0.2 * (2 - 1) - (0.3 * 1 + 0.2 * -2)) / 0.5 = 0.6
    loss = modpo_loss(t(0.0), t(-1.0), t(0.0), t(0.0), t(1.0, 0.0)[None], t(0.0, 2.0)[None], [0.5, 0.3, 0.2], beta=0.2)
    torch.testing.assert_close(loss, t(math.log1p(math.exp(-0.6))))


def test_modpo_with_one_hot_weights_is_dpo():
    g = torch.Generator().manual_seed(0)
    logps = [torch.randn(7, generator=g, dtype=torch.float64) * 5 for _ in range(4)]
    margins_c, margins_r = (
        torch.randn(7, 2, generator=g, dtype=torch.float64),
        torch.randn(7, 2, generator=g, dtype=torch.float64),
    )
    torch.testing.assert_close(modpo_loss(*logps, margins_c, margins_r, [1.0, 0.0, 0.0], beta=0.3),
                               dpo_loss(*logps, beta=0.3), rtol=0, atol=0)


def test_gradient_pushes_chosen_up_and_rejected_down():
    chosen, rejected = t(-3.0, -1.0).requires_grad_(), t(-2.0, -4.0).requires_grad_()
    loss = modpo_loss(chosen, rejected, t(-2.5, -2.0), t(-2.5, -3.0), t(0.2, 0.1)[:, None], t(0.0, 0.5)[:, None],
                      [0.6, 0.4], beta=0.1).sum()
    loss.backward()
    assert (chosen.grad < 0).all(), "descending the loss must raise the chosen log-probs"
    assert (rejected.grad > 0).all(), "descending the loss must lower the rejected log-probs"


@pytest.mark.parametrize("weights, message", [
    ([0.0, 1.0], "must be > 0"),
    ([-0.2, 1.2], "must be >= 0"),
    ([0.5, 0.6], "must sum to 1"),
    ([float("nan"), 1.0], "finite"),
    ([0.3, 0.3, 0.4], "3 entries but there are 2 objectives"),
    ([[0.5, 0.5]], "1-D"),
])
def test_bad_weights_raise(weights, message):
    with pytest.raises(ValueError, match=message):
        modpo_loss(t(0.0), t(0.0), t(0.0), t(0.0), t(0.0)[:, None], t(0.0)[:, None], weights, beta=0.1)


@pytest.mark.parametrize("args, message", [
    ((t(0.0, 1.0), t(0.0), t(0.0), t(0.0)), "batch size"),
    ((t(0.0)[None], t(0.0), t(0.0), t(0.0)), r"shape \(B,\)"),
    ((t(float("nan")), t(0.0), t(0.0), t(0.0)), "NaN"),
])
def test_bad_logps_raise(args, message):
    with pytest.raises(ValueError, match=message):
        modpo_loss(*args, t(0.0)[:, None], t(0.0)[:, None], [0.5, 0.5], beta=0.1)


def test_bad_margins_and_beta_raise():
    with pytest.raises(ValueError, match=r"\(B, n-1\)"):
        modpo_loss(t(0.0), t(0.0), t(0.0), t(0.0), t(0.0), t(0.0), [0.5, 0.5], beta=0.1)
    with pytest.raises(ValueError, match="NaN"):
        modpo_loss(t(0.0), t(0.0), t(0.0), t(0.0), t(float("nan"))[:, None], t(0.0)[:, None], [0.5, 0.5], beta=0.1)
    with pytest.raises(ValueError, match="beta"):
        dpo_loss(t(0.0), t(0.0), t(0.0), t(0.0), beta=0.0)


def test_sequence_logps_masks_prompt_and_padding():
    logits = torch.randn(2, 5, 7, dtype=torch.float64)
    labels = torch.tensor([[IGNORE_INDEX, IGNORE_INDEX, 3, 4, IGNORE_INDEX], [IGNORE_INDEX, 1, 2, 6, 0]])
    logp = logits.log_softmax(-1)
    expected = t(logp[0, 1, 3] + logp[0, 2, 4], logp[1, 0, 1] + logp[1, 1, 2] + logp[1, 2, 6] + logp[1, 3, 0])
    torch.testing.assert_close(sequence_logps(logits, labels).double(), expected, rtol=1e-5, atol=1e-5)


def test_check_weights_accepts_simplex():
    assert check_weights([0.25, 0.75]).tolist() == [0.25, 0.75]


# ---- the closed form: MODPO's optimum is pi_ref * exp(w . r / beta) / Z --------------------------

def closed_form_gap(rewards: torch.Tensor, weights: list[float], beta: float, seed: int) -> float:
    """Train a tabular policy with modpo_loss on Bradley-Terry pairs; return TV to the closed form.

    rewards: (K, n) known rewards of K responses to one prompt; column 0 is the target objective,
    whose pairwise labels are sampled from Bradley-Terry; columns 1.. are the margin rewards.
    """
    g = torch.Generator().manual_seed(seed)
    k = rewards.shape[0]
    ref_logits = torch.randn(k, generator=g, dtype=torch.float64)
    ref_logps = ref_logits.log_softmax(0)
    # 60k preference pairs: a uniform pair of distinct responses, labelled by BT on the target reward.
    n_pairs = 60_000
    a = torch.randint(0, k, (n_pairs,), generator=g)
    b = (a + torch.randint(1, k, (n_pairs,), generator=g)) % k
    p_a_wins = torch.sigmoid(rewards[a, 0] - rewards[b, 0])
    a_wins = torch.rand(n_pairs, generator=g, dtype=torch.float64) < p_a_wins
    chosen, rejected = torch.where(a_wins, a, b), torch.where(a_wins, b, a)
    theta = ref_logits.clone().requires_grad_()
    opt = torch.optim.LBFGS([theta], lr=1, max_iter=500, tolerance_grad=1e-12, tolerance_change=1e-14,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        logps = theta.log_softmax(0)
        loss = modpo_loss(logps[chosen], logps[rejected], ref_logps[chosen], ref_logps[rejected],
                          rewards[chosen, 1:], rewards[rejected, 1:], weights, beta).mean()
        loss.backward()
        return loss

    for _ in range(3):
        opt.step(closure)
    learned = theta.detach().softmax(0)
    target = (ref_logps + rewards @ torch.tensor(weights, dtype=torch.float64) / beta).softmax(0)
    return 0.5 * (learned - target).abs().sum().item()


@pytest.mark.parametrize("weights", [[1.0, 0.0], [0.7, 0.3], [0.5, 0.5], [0.2, 0.8]])
def test_closed_form_two_objectives(weights):
    rewards = torch.tensor([[1.0, -0.5], [0.2, 0.8], [-0.6, 0.3], [0.4, -1.0], [-1.0, 1.2]], dtype=torch.float64)
    beta = 1.0  # the loss sees w_k * r_k / beta through BT; beta 1 keeps the tabular optimum well conditioned
    assert closed_form_gap(rewards * beta, weights, beta, seed=1) < 0.02


@pytest.mark.parametrize("weights", [[0.6, 0.2, 0.2], [0.3, 0.5, 0.2]])
def test_closed_form_three_objectives(weights):
    rewards = torch.tensor([[0.8, -0.4, 0.5], [0.1, 0.9, -0.3], [-0.7, 0.2, 0.8], [0.5, -0.8, -0.6],
                            [-0.2, 0.6, 0.1], [0.3, 0.0, -0.9]], dtype=torch.float64)
    assert closed_form_gap(rewards * 0.5, weights, beta=0.5, seed=2) < 0.02


# ---- Bradley-Terry labels of a known reward: the expected loss over the draw --------------------------

def random_pairs(b: int, n: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    logps = [-torch.rand(b, generator=g, dtype=torch.float64) * 20 for _ in range(4)]
    margins = [torch.randn(b, n - 1, generator=g, dtype=torch.float64) for _ in range(2)]
    return logps, margins


def test_chosen_probs_average_the_loss_over_both_labels():
    (pc, pr, rc, rr), (mc, mr) = random_pairs(6, 3)
    w, p = [0.5, 0.3, 0.2], torch.linspace(0, 1, 6, dtype=torch.float64)
    hard = modpo_loss(pc, pr, rc, rr, mc, mr, w, 0.5)
    swapped = modpo_loss(pr, pc, rr, rc, mr, mc, w, 0.5)  # the other label: chosen and rejected trade places
    torch.testing.assert_close(modpo_loss(pc, pr, rc, rr, mc, mr, w, 0.5, chosen_probs=p), p * hard + (1 - p) * swapped)
    torch.testing.assert_close(modpo_loss(pc, pr, rc, rr, mc, mr, w, 0.5, chosen_probs=torch.ones(6).double()), hard)


def test_with_chosen_probs_each_pair_is_at_its_optimum_at_the_closed_form():
    # r_0 is the target's true reward; the labels' p = sigmoid(r_0(y_w) - r_0(y_l)); at the optimum
    # beta * (h(y_w) - h(y_l)) = w . (r(y_w) - r(y_l)) for every pair, and the gradient vanishes there
    (_, _, rc, rr), (mc, mr) = random_pairs(5, 3, seed=1)
    target_diff = torch.randn(5, dtype=torch.float64)
    w, beta = torch.tensor([0.4, 0.35, 0.25], dtype=torch.float64), 0.7
    h_diff = (w[0] * target_diff + (mc - mr) @ w[1:]) / beta
    policy_chosen = (rc + h_diff).requires_grad_()
    loss = modpo_loss(policy_chosen, rr.clone(), rc, rr, mc, mr, w.tolist(), beta,
                      chosen_probs=torch.sigmoid(target_diff)).sum()
    loss.backward()
    torch.testing.assert_close(policy_chosen.grad, torch.zeros(5, dtype=torch.float64), atol=1e-12, rtol=0)
    p = torch.sigmoid(target_diff)
    moved = modpo_loss(rc + h_diff + 0.3, rr, rc, rr, mc, mr, w.tolist(), beta, chosen_probs=p)
    assert (moved > modpo_loss(rc + h_diff, rr, rc, rr, mc, mr, w.tolist(), beta, chosen_probs=p)).all()


@pytest.mark.parametrize("probs, message", [(torch.tensor([0.5]), r"shape \(B,\) = \(2,\)"),
                                            (torch.tensor([0.5, 1.5]), r"must lie in \[0, 1\]")])
def test_bad_chosen_probs_are_refused(probs, message):
    with pytest.raises(ValueError, match=message):
        modpo_loss(t(-1, -1), t(-2, -2), t(-1, -1), t(-2, -2), t(0, 0)[:, None], t(0, 0)[:, None], [0.5, 0.5], 0.1,
                   chosen_probs=probs)


@pytest.mark.parametrize("labels_from", ["relevance", "sentiment", "brevity"])
def test_any_objectives_labels_reach_the_same_closed_form(labels_from):
    # Bradley-Terry labels of any objective, the others (the family's target too) as their true rewards for
    # margins, in loss_plan's order: the optimum is pi_ref * exp(w . r / beta) whichever labels train
    from modpo.weights import loss_plan
    names = ["relevance", "sentiment", "brevity"]
    rewards = torch.tensor([[0.8, -0.4, 0.5], [0.1, 0.9, -0.3], [-0.7, 0.2, 0.8], [0.5, -0.8, -0.6],
                            [-0.2, 0.6, 0.1], [0.3, 0.0, -0.9]], dtype=torch.float64) * 0.5
    objective, ordered = loss_plan(names, "relevance", [0.2, 0.5, 0.3], labels_from)
    assert objective == labels_from
    columns = [names.index(objective)] + [i for i, n in enumerate(names) if n != objective]
    assert closed_form_gap(rewards[:, columns], ordered, beta=0.5, seed=3) < 0.02


# ---- every objective's labels at once: sum_j w_j^k L_j (modpo_mixture_loss) ------------------------------

def mixture_inputs(b: int = 7, n: int = 3, seed: int = 4):
    g = torch.Generator().manual_seed(seed)
    pc, pr, rc, rr = (-torch.rand(b, generator=g, dtype=torch.float64) * 20 for _ in range(4))
    chosen_rewards, rejected_rewards = (torch.randn(b, n, generator=g, dtype=torch.float64) * 2 for _ in range(2))
    return pc, pr, rc, rr, chosen_rewards, rejected_rewards


@pytest.mark.parametrize("term_power", [1, 2])
@pytest.mark.parametrize("weights", [[0.2, 0.6, 0.2], [0.5, 0.0, 0.5], [0.34, 0.33, 0.33]])
def test_mixture_is_the_weighted_sum_of_each_objectives_modpo_loss(weights, term_power):
    # L_j: modpo_loss on j's Bradley-Terry labels (p_j from j's reward), the other rewards as margins, j first
    from modpo.loss import modpo_mixture_loss
    pc, pr, rc, rr, cr, rjr = mixture_inputs()
    beta = 0.7
    expected = torch.zeros(len(pc), dtype=torch.float64)
    for j, w_j in enumerate(weights):
        if w_j == 0:
            continue
        others = [i for i in range(len(weights)) if i != j]
        p_j = torch.sigmoid(cr[:, j] - rjr[:, j])
        ordered = [w_j] + [weights[i] for i in others]
        expected += w_j ** term_power * modpo_loss(pc, pr, rc, rr, cr[:, others], rjr[:, others], ordered, beta,
                                                   chosen_probs=p_j)
    torch.testing.assert_close(modpo_mixture_loss(pc, pr, rc, rr, cr, rjr, weights, beta, term_power), expected)


def test_mixture_on_a_vertex_is_dpo_on_that_objectives_labels():
    from modpo.loss import modpo_mixture_loss
    pc, pr, rc, rr, cr, rjr = mixture_inputs()
    p = torch.sigmoid(cr[:, 1] - rjr[:, 1])
    dpo = modpo_loss(pc, pr, rc, rr, torch.zeros(7, 0).double(), torch.zeros(7, 0).double(), [1.0], 0.5, chosen_probs=p)
    torch.testing.assert_close(modpo_mixture_loss(pc, pr, rc, rr, cr, rjr, [0.0, 1.0, 0.0], 0.5), dpo)


def test_mixture_weighted_by_w_optimum_is_the_closed_form_and_its_gradient_is_bounded():
    # term_power 1 (sum_j w_j L_j): at beta * (h(a) - h(b)) = w . (r(a) - r(b)) every term is at its optimum;
    # far from it the gradient in x = beta * (h(a) - h(b)) is sum_j (sigma(z_j) - p_j), at most 1 per weighted
    # objective, where one
    # objective's labels alone give (sigma(z_0) - p_0) / w_0, up to 1 / 0.2 = 5
    from modpo.loss import modpo_mixture_loss
    pc, pr, rc, rr, cr, rjr = mixture_inputs()
    w, beta = torch.tensor([0.2, 0.6, 0.2], dtype=torch.float64), 0.5
    optimum = (rc + ((cr - rjr) @ w) / beta).requires_grad_()
    modpo_mixture_loss(optimum, rr.clone(), rc, rr, cr, rjr, w.tolist(), beta, term_power=1).sum().backward()
    torch.testing.assert_close(optimum.grad, torch.zeros(7, dtype=torch.float64), atol=1e-12, rtol=0)
    for shift in (-40.0, 40.0):
        far = (rc + ((cr - rjr) @ w) / beta + shift).requires_grad_()
        modpo_mixture_loss(far, rr.clone(), rc, rr, cr, rjr, w.tolist(), beta, term_power=1).sum().backward()
        dx = far.grad / beta  # d loss / d x = sum_j (sigma(z_j) - p_j), each term saturated at 1 - p_j or -p_j
        p = torch.sigmoid(cr - rjr)  # (B, n)
        torch.testing.assert_close(dx, (1 - p).sum(1) if shift > 0 else -p.sum(1), atol=1e-6, rtol=0)
        assert (dx.abs() <= 3).all()
        far_one = (rc + ((cr - rjr) @ w) / beta + shift).requires_grad_()
        p0 = torch.sigmoid(cr[:, 0] - rjr[:, 0])
        alone = modpo_loss(far_one, rr.clone(), rc, rr, cr[:, 1:], rjr[:, 1:], w.tolist(), beta, chosen_probs=p0)
        alone.sum().backward()
        one = far_one.grad / beta  # relevance's labels alone: (sigma(z_0) - p_0) / 0.2
        torch.testing.assert_close(one, ((1 - p0) if shift > 0 else -p0) / 0.2, atol=1e-6, rtol=0)


def test_mixture_refuses_bad_input():
    from modpo.loss import modpo_mixture_loss
    pc, pr, rc, rr, cr, rjr = mixture_inputs()
    with pytest.raises(ValueError, match=r"shape \(B, n\) = \(7, 3\)"):
        modpo_mixture_loss(pc, pr, rc, rr, cr[:, :2], rjr, [0.2, 0.6, 0.2], 0.5)
    with pytest.raises(ValueError, match="summing to 1"):
        modpo_mixture_loss(pc, pr, rc, rr, cr, rjr, [0.2, 0.6, 0.3], 0.5)
    with pytest.raises(ValueError, match="NaN or inf"):
        modpo_mixture_loss(pc, pr, rc, rr, cr * float("nan"), rjr, [0.2, 0.6, 0.2], 0.5)


def test_mixture_with_one_weighting_per_example_is_each_rows_loss():
    from modpo.loss import modpo_mixture_loss
    pc, pr, rc, rr, cr, rjr = mixture_inputs()
    rows = torch.tensor([[0.2, 0.6, 0.2], [1.0, 0.0, 0.0], [0.0, 0.5, 0.5], [0.34, 0.33, 0.33], [0.0, 0.0, 1.0],
                         [0.5, 0.5, 0.0], [0.1, 0.1, 0.8]], dtype=torch.float64)
    each = torch.stack([modpo_mixture_loss(pc[i:i + 1], pr[i:i + 1], rc[i:i + 1], rr[i:i + 1], cr[i:i + 1],
                                           rjr[i:i + 1], rows[i].tolist(), 0.5)[0] for i in range(7)])
    torch.testing.assert_close(modpo_mixture_loss(pc, pr, rc, rr, cr, rjr, rows, 0.5), each)
    with pytest.raises(ValueError, match="every row of per-example weights must be finite, >= 0 and sum to 1"):
        modpo_mixture_loss(pc, pr, rc, rr, cr, rjr, rows * 2, 0.5)


def test_mixture_weighted_by_w_squared_has_gradient_w_j_per_objective_and_is_continuous_at_a_vertex():
    # sum_j w_j^2 L_j (the default): the same optimum; d/dx = sum_j w_j (sigma(z_j) - p_j), each objective's
    # labels pulling in proportion to its weight; near a vertex it tends to that vertex's DPO, where sum_j w_j L_j
    # does not (an objective with w_j = eps still adds eps * L_j ~ |x - w . dr|, its logit being divided by eps)
    from modpo.loss import modpo_mixture_loss
    pc, pr, rc, rr, cr, rjr = mixture_inputs()
    w, beta = torch.tensor([0.2, 0.6, 0.2], dtype=torch.float64), 0.5
    optimum = (rc + ((cr - rjr) @ w) / beta).requires_grad_()
    modpo_mixture_loss(optimum, rr.clone(), rc, rr, cr, rjr, w.tolist(), beta).sum().backward()
    torch.testing.assert_close(optimum.grad, torch.zeros(7, dtype=torch.float64), atol=1e-12, rtol=0)
    x = pc.clone().requires_grad_()
    modpo_mixture_loss(x, pr, rc, rr, cr, rjr, w.tolist(), beta).sum().backward()
    dx = beta * ((x - rc) - (pr - rr)).detach()
    dr = cr - rjr
    z = dr + (dx - dr @ w)[:, None] / w
    torch.testing.assert_close(x.grad / beta, ((torch.sigmoid(z) - torch.sigmoid(dr)) * w).sum(1))
    p1 = torch.sigmoid(dr[:, 1])
    dpo = modpo_loss(pc, pr, rc, rr, torch.zeros(7, 0).double(), torch.zeros(7, 0).double(), [1.0], beta,
                     chosen_probs=p1)
    near = [1e-4, 1 - 2e-4, 1e-4]
    torch.testing.assert_close(modpo_mixture_loss(pc, pr, rc, rr, cr, rjr, near, beta), dpo,
                               atol=1e-2, rtol=0)
    jump = (modpo_mixture_loss(pc, pr, rc, rr, cr, rjr, near, beta, term_power=1) - dpo).abs().max()
    assert jump > 0.5  # sum_j w_j L_j: the two eps terms stay O(|x - w . dr|) however small eps is
    with pytest.raises(ValueError, match="term_power must be 1 or 2"):
        modpo_mixture_loss(pc, pr, rc, rr, cr, rjr, w.tolist(), beta, term_power=3)
