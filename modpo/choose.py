"""Which weighting does a user want? A Bradley-Terry posterior over w from their votes (DESIGN §6).

Pure numpy, no I/O. An answer's utility to a user with weighting w is w . z, where z are its
objective scores standardized over the family's evaluated answers (so every objective is in standard
deviations and "higher is better", minimized objectives flipped). A vote between answers a and b is

    P(a preferred | w, kappa) = sigma(kappa * w . (z_a - z_b))                           (BT)

kappa (nats per standard deviation of utility) is how consistently the user votes; it is unknown, so
it gets a small grid with a flat prior and is summed out. w gets a grid over the simplex with a flat
prior. A tie counts as outcome 1/2 (the expected BT log-likelihood at p = 1/2: evidence that the two
answers are worth the same); "both bad" is left out (votes.LABEL_OUTCOME).

The next pair to compare is the candidate whose outcome the posterior is least able to predict from
w: the largest mutual information I(outcome; w, kappa) = H(E[p]) - E[H(p)] (BALD, Houlsby et al. 2011).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KAPPAS = (0.5, 1.0, 2.0, 4.0, 8.0)  # nats per sd of utility: from a noisy voter to a near-deterministic one
CREDIBLE = 0.9  # mass of the credible region drawn on the Front page


def standardize(scores, maximize) -> tuple[np.ndarray, np.ndarray]:
    """(center (K,), scale (K,)): z = (s - center) / scale, with scale < 0 for a minimized objective so
    that higher z is always better. scores: (N, K) objective scores of the family's answers."""
    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 2 or len(scores) < 2:
        raise ValueError(f"standardizing needs an (N >= 2, K) array of scores, got shape {scores.shape}")
    sd = scores.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)  # an objective that never varies carries no evidence; keep it finite
    sign = np.where(np.asarray(maximize, dtype=bool), 1.0, -1.0)
    return scores.mean(axis=0), sd * sign


def simplex_grid(k: int, steps: int = 40) -> np.ndarray:
    """(G, k) every weighting with entries in multiples of 1/steps (G = C(steps + k - 1, k - 1))."""
    if k < 1 or steps < 1:
        raise ValueError(f"need k >= 1 objectives and steps >= 1, got k={k}, steps={steps}")
    if k == 1:
        return np.ones((1, 1))
    rows = _compositions(k, steps)
    return np.asarray(rows, dtype=float) / steps


def _compositions(k: int, n: int) -> list[tuple[int, ...]]:
    if k == 1:
        return [(n,)]
    return [(i, *rest) for i in range(n, -1, -1) for rest in _compositions(k - 1, n - i)]


def _log_sigmoid(x: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0.0, -x)


def log_likelihood(grid, kappas, diffs, outcomes) -> np.ndarray:
    """(C, G) log P(votes | kappa_c, w_g). grid: (G, K); kappas: (C,); diffs: (V, K) standardized
    z_a - z_b; outcomes: (V,) in {1, 0, 0.5}. Eq. BT above, summed over votes."""
    grid, diffs = np.asarray(grid, float), np.asarray(diffs, float).reshape(-1, np.shape(grid)[1])
    outcomes, kappas = np.asarray(outcomes, float), np.asarray(kappas, float)
    utility = grid @ diffs.T  # (G, V)
    logits = kappas[:, None, None] * utility[None]  # (C, G, V)
    return (outcomes * _log_sigmoid(logits) + (1 - outcomes) * _log_sigmoid(-logits)).sum(-1)


@dataclass
class Posterior:
    grid: np.ndarray      # (G, K) weightings
    kappas: np.ndarray    # (C,)
    joint: np.ndarray     # (C, G) posterior probabilities, summing to 1
    n_votes: int

    @property
    def weights(self) -> np.ndarray:
        """(G,) the marginal posterior over w."""
        return self.joint.sum(0)

    @property
    def mean(self) -> np.ndarray:
        """(K,) the posterior mean weighting: the estimate."""
        return self.weights @ self.grid

    @property
    def sd(self) -> np.ndarray:
        """(K,) posterior standard deviation of each weight."""
        return np.sqrt(np.maximum(self.weights @ (self.grid - self.mean) ** 2, 0.0))

    def credible(self, mass: float = CREDIBLE) -> np.ndarray:
        """(G,) bool: the highest-probability grid weightings holding `mass` of the posterior."""
        p = self.weights
        order = np.argsort(-p)
        keep = np.cumsum(p[order]) - p[order] < mass
        mask = np.zeros(len(p), dtype=bool)
        mask[order[keep]] = True
        return mask


def posterior(diffs, outcomes, k: int, steps: int = 40, kappas=KAPPAS) -> Posterior:
    """The posterior over (kappa, w) after the votes (flat priors); with no votes, the prior."""
    grid = simplex_grid(k, steps)
    kappas = np.asarray(kappas, dtype=float)
    log_post = log_likelihood(grid, kappas, diffs, outcomes)
    joint = np.exp(log_post - log_post.max())
    return Posterior(grid, kappas, joint / joint.sum(), int(len(np.asarray(outcomes))))


GAIN_CHUNK = 128


def information_gain(post: Posterior, candidate_diffs) -> np.ndarray:
    """(P,) mutual information (nats) between a candidate vote's outcome and (kappa, w).
    candidate_diffs: (P, K) standardized z_a - z_b of each candidate pair."""
    d = np.asarray(candidate_diffs, dtype=float).reshape(-1, post.grid.shape[1])
    keep = post.joint > 0  # cells without mass (underflowed after many votes) add nothing to either term
    weights = post.joint[keep]  # (M,)
    cells = np.broadcast_to(post.kappas[:, None], keep.shape)[keep][:, None] * post.grid[np.nonzero(keep)[1]]  # (M, K)
    out = np.empty(len(d))
    for start in range(0, len(d), GAIN_CHUNK):  # a few hundred pairs at a time: the (M, chunk) arrays stay small
        x = cells @ d[start:start + GAIN_CHUNK].T  # (M, chunk): the vote's logit in each cell
        # p = sigmoid(x), its entropy H(p) = softplus(x) - x p, softplus(x) = max(x, 0) + log1p(exp(-|x|)):
        # one exp and one log1p per cell, stable at any |x|
        e = np.exp(-np.abs(x))
        p = np.where(x >= 0, 1 / (1 + e), e / (1 + e))
        entropy = np.maximum(x, 0) + np.log1p(e) - x * p
        mean_p = np.clip(weights @ p, 1e-12, 1 - 1e-12)
        out[start:start + GAIN_CHUNK] = (-(mean_p * np.log(mean_p) + (1 - mean_p) * np.log(1 - mean_p))
                                         - weights @ entropy)
    return out


MAX_CANDIDATES = 2000  # pairs whose gain is computed per suggestion (0.2 s on the 2-core Xeon)


def widest_pairs(candidate_diffs, limit: int = MAX_CANDIDATES) -> np.ndarray:
    """Indices of the `limit` candidate pairs whose standardized difference |z_a - z_b| (Euclidean) is
    largest, in their original order: the shortlist information_gain is computed over when a pool has
    more pairs than that (a saved answer per held-out prompt for 30 points gives tens of thousands).
    A vote's logit is kappa * w . (z_a - z_b), so the widest pairs are the ones a vote can say most about
    at any (kappa, w). candidate_diffs: (P, K)."""
    d = np.asarray(candidate_diffs, dtype=float).reshape(len(candidate_diffs), -1)
    if len(d) <= limit:
        return np.arange(len(d))
    return np.sort(np.argsort(-np.linalg.norm(d, axis=1), kind="stable")[:limit])


def nearest(estimate, weights_by_id: dict[str, tuple]) -> tuple[str, float] | None:
    """(id, L1 distance) of the point whose weighting is closest to the estimate; None without points."""
    best = None
    for point_id, w in weights_by_id.items():
        distance = float(np.abs(np.asarray(w, float) - np.asarray(estimate, float)).sum())
        if best is None or distance < best[1]:
            best = (point_id, distance)
    return best
