"""How many votes does choosing a weighting take? Simulated voters on the demo family's saved answers.

Each simulated voter has a hidden weighting w* ~ Dirichlet(1, 1, 1) and a consistency kappa* (nats per
standard deviation of utility). Shown two answers a and b to one prompt, it prefers a with probability
sigma(kappa* w* . (z_a - z_b)) (choose.py's Bradley-Terry model), where z are the answers' true objective
scores standardized over all saved answers (choose.standardize). The estimate does not know kappa*: it is
choose.posterior's mean, with kappa summed out over choose.KAPPAS (flat priors, as the app uses it).

Candidate answers: every point's saved evaluation samples (eval.json "samples": base + adapters, one
answer per held-out prompt each). Candidate pairs: two different answer texts to the same prompt from
different points, each comparison once; in a pool of more than --max-candidates pairs, the widest that
many (choose.widest_pairs), as the app's suggestion keeps. Two strategies per voter, with the same w*
and the same coin per pair (a pair shown to both gets the same vote): "suggested" takes the unvoted
pair with the largest choose.information_gain under the current posterior; "random" takes a uniformly
random unvoted pair.
After each vote the posterior is recomputed and L1 = |mean - w*|_1 recorded.

For speed the posterior and the information gain are updated from precomputed per-pair terms (the
likelihood of each pair's two outcomes, its entropy at every (kappa, w)), the same arithmetic as
choose.posterior / choose.information_gain done once per pair instead of once per step. The first
--check voters of every kappa* are recomputed at every step with the library functions themselves, and
the run stops if they differ by more than 1e-8.

    python benchmarks/bench_votes.py                     # 200 voters, kappa* 2 4 8, up to 60 votes (~3.5 min)
    python benchmarks/bench_votes.py --estimators all    # other estimator settings beside the default (~16 min)
    python benchmarks/bench_votes.py --answers train     # a more diverse answer pool (~5 min)

It is numpy on one core: set OMP_NUM_THREADS=1 to keep it there. Results for one estimator do not depend on
which others run (every voter's w* and coins come from --seed), so separate runs can be tabulated together.
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from modpo import choose  # noqa: E402
from modpo.family import load_family, preferences_file  # noqa: E402

TARGET_L1 = 0.15     # the "within 0.15 of w* (L1)"
TARGET_VOTES = 15    # ... "after at most 15 votes"
TARGET_SHARE = 0.80  # ... "for at least 80% of 200 random w*"
REPORT_AT = (5, 10, 15)
STRATEGIES = ("suggested", "random")
W_SHORTLIST = 100  # estimator "gain-w": pairs (by joint gain) whose gain about w alone is computed each step


def candidate_pairs(family, kinds=None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(scores (N, K) of every saved answer, pairs (P, 2) answer indices, objective names). A pair is two
    answers to one prompt from different points whose texts differ (whitespace aside); two points giving
    the same text make the same comparison, which is kept once."""
    names = family.spec.objective_names
    answers = []  # (point id, prompt, normalized text, scores)
    for point in family.points:
        if kinds and point.kind not in kinds:
            continue
        for s in (point.eval or {}).get("samples", []):
            answers.append((point.id, s["prompt"], " ".join(s["response"].split()), [s["scores"][n] for n in names]))
    seen, pairs = set(), []
    for i, j in itertools.combinations(range(len(answers)), 2):
        (pi, qi, ti, _), (pj, qj, tj, _) = answers[i], answers[j]
        key = (qi, frozenset((ti, tj)))
        if qi == qj and pi != pj and ti != tj and key not in seen:
            seen.add(key)
            pairs.append((i, j))
    return np.array([a[3] for a in answers], dtype=float), np.array(pairs), names


def training_pairs(family) -> tuple[np.ndarray, np.ndarray]:
    """(scores (N, K), pairs (P, 2)) of a more diverse pool, for comparison: the base model's answers to the
    training prompts (sampled at temperature 0.7, 2-4 distinct ones a prompt, data/preferences.jsonl), every
    two distinct texts to one prompt a pair."""
    names = family.spec.objective_names
    by_prompt: dict[str, dict[str, list[float]]] = {}
    for line in preferences_file(family.root).read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        for i, text in enumerate(row["responses"]):
            by_prompt.setdefault(row["prompt"], {})[" ".join(text.split())] = [row["scores"][n][i] for n in names]
    scores, pairs = [], []
    for answers in by_prompt.values():
        first = len(scores)
        scores += list(answers.values())
        pairs += itertools.combinations(range(first, len(scores)), 2)
    return np.array(scores, dtype=float), np.array(pairs)


class Estimator:
    """choose.posterior / choose.information_gain over a fixed candidate set, from precomputed per-pair terms."""

    def __init__(self, diffs: np.ndarray, k: int, steps: int, kappas, gain: str = "joint", estimate: str = "mean"):
        self.grid = choose.simplex_grid(k, steps)                                    # (G, K)
        self.kappas = np.asarray(kappas, dtype=float)                                # (C,)
        self.steps, self.gain, self.estimate = steps, gain, estimate
        if estimate in ("l1", "ball"):
            self.l1_between = np.abs(self.grid[:, None] - self.grid[None]).sum(-1)  # (G, G)
        logits = self.kappas[:, None, None] * (self.grid @ diffs.T)[None]            # (C, G, P)
        self.log_win = choose._log_sigmoid(logits)                                   # log P(left wins)
        self.log_lose = choose._log_sigmoid(-logits)
        p = np.clip(1 / (1 + np.exp(-logits)), 1e-12, 1 - 1e-12)                     # as in information_gain
        cg = len(self.kappas) * len(self.grid)
        self.p = p.reshape(cg, -1)                                                   # (C*G, P)
        self.entropy = (-(p * np.log(p) + (1 - p) * np.log(1 - p))).reshape(cg, -1)  # (C*G, P)

    def joint(self, log_post: np.ndarray) -> np.ndarray:
        joint = np.exp(log_post - log_post.max())
        return joint / joint.sum()

    def information_gain(self, joint: np.ndarray, voted: np.ndarray) -> np.ndarray:
        """(P,) the gain of each candidate pair, -inf for those already voted on. "joint": I(outcome; kappa,
        w), as choose.information_gain. "w": I(outcome; w) with kappa a nuisance (the outcome's entropy
        given w alone, kappa summed out under the posterior given w); for speed it is computed only for
        the W_SHORTLIST unvoted pairs with the largest joint gain, the rest get -inf."""
        flat = joint.reshape(-1)
        mean_p = flat @ self.p
        marginal = -(mean_p * np.log(mean_p) + (1 - mean_p) * np.log(1 - mean_p))
        gain = np.where(voted, -np.inf, marginal - flat @ self.entropy)
        if self.gain == "joint":
            return gain
        if self.gain == "variance":
            return np.where(voted, -np.inf, -self.expected_variance(flat, mean_p))
        short = np.argsort(-gain)[:W_SHORTLIST]
        c, g = joint.shape
        w = joint.sum(0)                                                             # (G,)
        p_w = np.einsum("cg,cgp->gp", joint, self.p.reshape(c, g, -1)[:, :, short]) / w[:, None]  # (G, S)
        p_w = np.clip(p_w, 1e-12, 1 - 1e-12)
        gain_w = np.full_like(gain, -np.inf)
        gain_w[short] = marginal[short] - w @ (-(p_w * np.log(p_w) + (1 - p_w) * np.log(1 - p_w)))
        return np.where(voted, -np.inf, gain_w)

    def expected_variance(self, flat: np.ndarray, p_win: np.ndarray) -> np.ndarray:
        """(P,) the posterior variance of w (trace of its covariance) expected after each pair's vote:
        sum over the two outcomes of P(outcome) * tr Cov(w | votes, outcome)."""
        w = np.tile(self.grid, (len(self.kappas), 1))                                # (C*G, K)
        qw, qw2 = flat[:, None] * w, flat * (w ** 2).sum(1)                          # (C*G, K), (C*G,)
        m1_win, m2_win = qw.T @ self.p, qw2 @ self.p                                  # (K, P), (P,): sums over wins
        m1_lose, m2_lose = qw.sum(0)[:, None] - m1_win, qw2.sum() - m2_win
        p_win = np.clip(p_win, 1e-12, 1 - 1e-12)
        p_lose = 1 - p_win
        var_win = m2_win / p_win - ((m1_win / p_win) ** 2).sum(0)
        var_lose = m2_lose / p_lose - ((m1_lose / p_lose) ** 2).sum(0)
        return p_win * var_win + p_lose * var_lose

    def point(self, joint: np.ndarray) -> np.ndarray:
        """(K,) the estimate: the posterior mean (Posterior.mean), the grid weighting with the least
        expected L1 distance to w under the posterior ("l1"), or the one with the most posterior mass within
        TARGET_L1 of it ("ball": the Bayes choice for the target's hit-or-miss)."""
        w = joint.sum(0)
        if self.estimate == "mean":
            return w @ self.grid
        if self.estimate == "ball":
            return self.grid[np.argmax((self.l1_between <= TARGET_L1 + 1e-9) @ w)]
        return self.grid[np.argmin(self.l1_between @ w)]


def simulate(est: Estimator, diffs, w_star, kappa_star, coins, strategy, max_votes, rng, check=False):
    """(max_votes,) L1 distance of the estimate (est.point: the posterior mean by default) to w_star after each vote."""
    n_pairs = len(diffs)
    p_true = 1 / (1 + np.exp(-kappa_star * diffs @ w_star))                          # (P,)
    log_post = np.zeros((len(est.kappas), len(est.grid)))
    voted = np.zeros(n_pairs, dtype=bool)
    order = rng.permutation(n_pairs) if strategy == "random" else None
    shown, outcomes, l1 = [], [], np.empty(max_votes)
    for t in range(max_votes):
        if strategy == "random":
            j = order[t]
        else:
            gain = est.information_gain(est.joint(log_post), voted)
            if check and est.gain == "joint":
                lib = choose.information_gain(choose.posterior(diffs[shown], outcomes, diffs.shape[1], est.steps,
                                                               est.kappas), diffs)
                _agree("information_gain", gain[~voted], lib[~voted])
            j = int(np.argmax(gain))
        voted[j] = True
        win = bool(coins[j] < p_true[j])
        log_post += est.log_win[:, :, j] if win else est.log_lose[:, :, j]
        shown.append(j)
        outcomes.append(1.0 if win else 0.0)
        joint = est.joint(log_post)
        mean = est.point(joint)
        if check:
            post = choose.posterior(diffs[shown], outcomes, diffs.shape[1], est.steps, est.kappas)
            _agree("posterior", joint, post.joint)
            if est.estimate == "mean":
                _agree("posterior mean", mean, post.mean)
        l1[t] = np.abs(mean - w_star).sum()
    return l1


def _agree(what, ours, library):
    gap = float(np.max(np.abs(np.asarray(ours) - np.asarray(library))))
    if gap > 1e-8:
        raise SystemExit(f"the fast {what} differs from modpo.choose's by {gap:.2e}; the benchmark is wrong")


def votes_needed(l1: np.ndarray, target: float) -> tuple[int, int]:
    """(first, settled): the first vote count after which the estimate is within target, and the first
    from which it stays within through the last vote; len(l1) + 1 when there is none (capped)."""
    within = l1 <= target
    hit = np.flatnonzero(within)
    first = int(hit[0]) + 1 if len(hit) else len(l1) + 1
    out = np.flatnonzero(~within)
    settled = int(out[-1]) + 2 if len(out) else 1
    return first, settled


def summarize(l1s: dict[str, np.ndarray], max_votes: int) -> dict:
    out = {}
    for s, l1 in l1s.items():                                                       # l1: (voters, max_votes)
        first, settled = np.array([votes_needed(row, TARGET_L1) for row in l1]).T
        out[s] = {
            "share_within_at_15": float(np.mean(l1[:, TARGET_VOTES - 1] <= TARGET_L1)),
            "share_first_within_by_15": float(np.mean(first <= TARGET_VOTES)),
            "median_l1": {n: float(np.median(l1[:, n - 1])) for n in REPORT_AT if n <= max_votes},
            **{f"{kind}_votes_{stat}": float(f(x)) for kind, x in (("first", first), ("settled", settled))
               for stat, f in (("mean", np.mean), ("median", np.median))},
            "first_capped": int((first > max_votes).sum()),
            "settled_capped": int((settled > max_votes).sum()),
        }
    for kind in ("first", "settled"):
        for stat in ("mean", "median"):
            key = f"{kind}_votes_{stat}"
            out[f"ratio_{kind}_{stat}"] = out["random"][key] / out["suggested"][key]
    return out


ESTIMATORS = {  # name -> (grid steps, kappas or None for "only the true kappa*", gain about, estimate)
    "default": (40, choose.KAPPAS, "joint", "mean"),          # modpo.choose as the app uses it
    "oracle-kappa": (40, None, "joint", "mean"),              # the voter's kappa* known: an upper bound
    "steps-20": (20, choose.KAPPAS, "joint", "mean"),
    "kappas-2-4-8": (40, (2.0, 4.0, 8.0), "joint", "mean"),   # no hypotheses of a very noisy voter
    "gain-w": (40, choose.KAPPAS, "w", "mean"),               # pairs chosen for information about w alone
    "l1-estimate": (40, choose.KAPPAS, "joint", "l1"),        # the estimate minimizing expected L1, not the mean
    "variance": (40, choose.KAPPAS, "variance", "mean"),      # pairs chosen for the least expected variance of w
    "ball": (40, choose.KAPPAS, "joint", "ball"),             # the weighting with most posterior mass within 0.15
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--family", default="checkpoints/demo")
    ap.add_argument("--voters", type=int, default=200)
    ap.add_argument("--kappas", type=float, nargs="+", default=[2.0, 4.0, 8.0], help="the voters' kappa*")
    ap.add_argument("--max-votes", type=int, default=60, help="votes per voter; a voter never within the "
                    "target by then counts as needing max-votes + 1")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--estimators", nargs="+", default=["default"],
                    help=f"estimator settings to compare: {', '.join(ESTIMATORS)} or all")
    ap.add_argument("--answers", choices=("eval", "train"), default="eval",
                    help="eval: the points' saved evaluation answers (the issue's setting); train: the base model's "
                    "sampled training answers, a more diverse pool, standardized like the eval answers")
    ap.add_argument("--kinds", nargs="+", default=["base", "modpo", "dpo-margin"],
                    help="the kinds of point whose answers make the pool (default: the base model and the trained "
                    "adapters, as measured in RESULTS §9; add conditioned for the demo's 21 conditioned points: "
                    "8,928 answers instead of 2,880, 41,884 pairs instead of 12,199, before the shortlist)")
    ap.add_argument("--check", type=int, default=2, help="voters per kappa* checked step by step against modpo.choose")
    ap.add_argument("--max-candidates", type=int, default=choose.MAX_CANDIDATES,
                    help="keep the widest this many candidate pairs (default %(default)s: choose.MAX_CANDIDATES, "
                         "as the app does)")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    if a.max_votes < TARGET_VOTES:
        ap.error(f"--max-votes must be at least {TARGET_VOTES}")
    estimators = list(ESTIMATORS) if a.estimators == ["all"] else a.estimators
    start = time.perf_counter()

    family = load_family(a.family)
    scores, pairs, names = candidate_pairs(family, set(a.kinds))
    center, scale = choose.standardize(scores, [o.maximize for o in family.spec.objectives])
    if a.answers == "train":
        scores, pairs = training_pairs(family)
    z = (scores - center) / scale
    diffs = z[pairs[:, 0]] - z[pairs[:, 1]]                                          # (P, K)
    shortlist = choose.widest_pairs(diffs, a.max_candidates)  # what the app's votes.suggest_pair computes gains over
    if len(shortlist) < len(pairs):
        print(f"{len(pairs)} candidate pairs: the widest {len(shortlist)} kept (--max-candidates)", flush=True)
    pairs, diffs = pairs[shortlist], diffs[shortlist]
    k = len(names)
    print(f"{family.spec.name} ({a.answers} answers): {len(scores)} answers, {len(pairs)} candidate "
          f"pairs; objectives {names}; |z_a - z_b| median {np.round(np.median(np.abs(diffs), 0), 2).tolist()}, 90th "
          f"percentile {np.round(np.percentile(np.abs(diffs), 90, axis=0), 2).tolist()}",
          flush=True)

    rng = np.random.default_rng(a.seed)
    w_stars = rng.dirichlet(np.ones(k), size=a.voters)                               # the same voters everywhere
    results = {}
    for name in estimators:
        steps, kappas, gain, estimate = ESTIMATORS[name]
        shared = Estimator(diffs, k, steps, kappas, gain, estimate) if kappas is not None else None
        for kappa_star in a.kappas:
            t0 = time.perf_counter()
            est = shared or Estimator(diffs, k, steps, (kappa_star,), gain, estimate)
            l1s = {s: np.empty((a.voters, a.max_votes)) for s in STRATEGIES}
            for v, w_star in enumerate(w_stars):
                voter_rng = np.random.default_rng([a.seed, v, int(kappa_star * 1000)])
                coins = voter_rng.random(len(pairs))  # one coin per pair, shared by both strategies
                for s in STRATEGIES:
                    l1s[s][v] = simulate(est, diffs, w_star, kappa_star, coins, s, a.max_votes, voter_rng,
                                         check=v < a.check)
            summary = summarize(l1s, a.max_votes)
            summary["seconds"] = time.perf_counter() - t0
            results[(name, kappa_star)] = summary
            print(f"  {name} kappa*={kappa_star:g}: {summary['seconds']:.1f} s", flush=True)

    print(f"\n{a.voters} voters, w* ~ Dirichlet(1,1,1), up to {a.max_votes} votes; within: L1 <= {TARGET_L1}. Votes "
          f"needed: first = the first vote count within, settled = the first from which it stays within through "
          f"vote {a.max_votes}; a voter with none counts as {a.max_votes + 1} (capped)\n")
    print("| estimator | kappa* | strategy | within at 15 | first within by 15 | median L1 at 5 / 10 / 15 "
          "| votes, first: mean / median (capped) | votes, settled: mean / median (capped) |")
    print("|---|---:|---|---:|---:|---|---:|---:|")
    for (name, kappa_star), r in results.items():
        for s in STRATEGIES:
            x = r[s]
            print(f"| {name} | {kappa_star:g} | {s} | {x['share_within_at_15']:.0%} | "
                  f"{x['share_first_within_by_15']:.0%} | " + " / ".join(f"{v:.3f}" for v in x["median_l1"].values())
                  + f" | {x['first_votes_mean']:.1f} / {x['first_votes_median']:.0f} ({x['first_capped']}) | "
                  f"{x['settled_votes_mean']:.1f} / {x['settled_votes_median']:.0f} ({x['settled_capped']}) |")
    print("\nvotes needed, random / suggested: first (mean; median), settled (mean; median):")
    for (name, kappa_star), r in results.items():
        met = r["suggested"]["share_within_at_15"] >= TARGET_SHARE
        print(f"  {name} kappa*={kappa_star:g}: {r['ratio_first_mean']:.2f}x; {r['ratio_first_median']:.2f}x, "
              f"{r['ratio_settled_mean']:.2f}x; {r['ratio_settled_median']:.2f}x; target ({TARGET_SHARE:.0%} of "
              f"suggested within {TARGET_L1} at vote {TARGET_VOTES}) {'met' if met else 'missed'}")
    print(f"\nwall time {time.perf_counter() - start:.1f} s")
    if a.json:
        Path(a.json).write_text(json.dumps({f"{n} kappa*={kap:g}": r for (n, kap), r in results.items()}, indent=2))


if __name__ == "__main__":
    main()
