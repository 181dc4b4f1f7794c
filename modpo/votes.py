"""Votes: a user's judgement between two answers to one prompt, kept as preference data.

A vote is one line of `<family>/data/votes.jsonl` (written by family.append_vote, read by
family.read_votes) in the project's preference schema (data.py), so it trains like any data:

    {"prompt": "...", "responses": [left answer, right answer],
     "preferences": {"human": 0},                  # 0 left, 1 right, null: tie or both bad
     "label": "left" | "right" | "tie" | "both bad",
     "points": [{"id", "weights", "settings"}, {...}],   # who answered, and how (decoding settings)
     "scores": {objective: [left, right]},           # the answers' objective scores, when known
     "time": unix seconds, "session": an id per browser session, "blind": whether ids were hidden}

`votes_dataset(votes, objective)` turns them into a PreferenceDataset whose labels belong to a new
objective ("human", or any name) or to the target; ties and "both bad" are rows without a label.
`vote_evidence` gives what the weighting estimate (choose.py) needs: per vote the answers' score
difference and the outcome.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from .choose import Posterior, information_gain, posterior, standardize, widest_pairs
from .schema import VOTE_LABELS

HUMAN = "human"
LABEL_PREFERENCE = {"left": 0, "right": 1, "tie": None, "both bad": None}
# The outcome of a vote for the Bradley-Terry likelihood: 1 left won, 0 right won, 0.5 a tie (the two
# answers are worth the same to this user: evidence that w . (s_left - s_right) is near 0). "both bad"
# says nothing about how the objectives trade off, so it stays out of the likelihood (None).
LABEL_OUTCOME = {"left": 1.0, "right": 0.0, "tie": 0.5, "both bad": None}


def make_vote(prompt: str, answers: Sequence[Mapping], label: str, session: str, blind: bool = False,
              objective: str = HUMAN, now: float | None = None) -> dict:
    """The votes.jsonl record of one vote. answers: [left, right], each {"id", "text", "weights" (or
    None), "settings" (a dict), "scores" ({objective: float}, may be empty)}."""
    if label not in VOTE_LABELS:
        raise ValueError(f"a vote's label must be one of {VOTE_LABELS}, got {label!r}")
    if len(answers) != 2:
        raise ValueError(f"a vote compares two answers, got {len(answers)}")
    left, right = answers
    shared = sorted(set(left.get("scores") or {}) & set(right.get("scores") or {}))
    same = " ".join(left["text"].split()) == " ".join(right["text"].split())
    return {
        "prompt": prompt,
        "responses": [left["text"], right["text"]],
        # a preference between identical answers means nothing to train on (the data schema refuses it)
        "preferences": {objective: None if same else LABEL_PREFERENCE[label]},
        "label": label,
        "points": [{"id": a["id"], "weights": a.get("weights"), "settings": dict(a.get("settings") or {})}
                   for a in answers],
        "scores": {k: [float(left["scores"][k]), float(right["scores"][k])] for k in shared},
        "time": float(time.time() if now is None else now),
        "session": session,
        "blind": bool(blind),
    }


def votes_dataset(votes: Sequence[Mapping], objective: str = HUMAN, source: str = "votes"):
    """The votes as preference rows labelled on `objective` (a new one, or the family's target).
    Ties and "both bad" become rows without a label (kept, as the data schema keeps ties).
    Returns a data.PreferenceDataset (imported here: the dashboard's pages load this module without torch)."""
    from .data import rows_from_records
    if not votes:
        raise ValueError(f"{source}: no votes to train on; vote on the Compare page first")
    records = [{"prompt": v["prompt"], "responses": list(v["responses"]),
                "preferences": {objective: LABEL_PREFERENCE[v["label"]]}} for v in votes]
    return rows_from_records(records, source, [objective])


def load_votes_file(path, objective: str = HUMAN):
    """A votes.jsonl as training data (a data.PreferenceDataset), its labels named `objective`. Read as
    plain preference rows (the vote lines are preference rows; their own key is "human"), renamed when asked."""
    from .data import PreferenceDataset, load_jsonl
    data = load_jsonl(path)
    if data.objectives == [objective]:
        return data
    if len(data.objectives) != 1:
        raise ValueError(f"{path}: a votes file labels one objective, this one has {data.objectives}")
    old = data.objectives[0]
    rows = [type(r)(r.prompt, r.responses, {objective: r.preferences[old]}, r.scores) for r in data.rows]
    return PreferenceDataset([objective], rows, data.source)


def vote_evidence(votes: Sequence[Mapping], objectives: Sequence[str]) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """(score_diffs (V, K): s_left - s_right per objective, outcomes (V,): 1 / 0 / 0.5, used (V,): the
    index of each vote used). Votes without scores on every objective, and "both bad", are left out."""
    diffs, outcomes, used = [], [], []
    for i, v in enumerate(votes):
        outcome = LABEL_OUTCOME[v["label"]]
        scores = v.get("scores") or {}
        if outcome is None or any(k not in scores for k in objectives):
            continue
        diffs.append([scores[k][0] - scores[k][1] for k in objectives])
        outcomes.append(outcome)
        used.append(i)
    return np.asarray(diffs, dtype=float).reshape(-1, len(objectives)), np.asarray(outcomes, dtype=float), used


# ---- from votes to a weighting, and the next pair to ask about ---------------------------------------

def answer_pool(points: Sequence, objectives: Sequence[str], extra: Sequence[Mapping] = ()) -> list[dict]:
    """Every known answer scored on all objectives: each point's saved evaluation samples, then extra
    ones (e.g. generated on the Compare page). Items: {"id", "prompt", "text", "scores", "weights"}.
    One saved answer per point and prompt (an evaluation answers each prompt once): a stranger's eval.json
    that repeats a prompt cannot grow the pairs of that prompt (candidate_pairs is quadratic in them)."""
    pool, seen = [], set()
    for p in points:
        for s in (p.eval or {}).get("samples", []):
            if (p.id, s["prompt"]) in seen:
                continue
            seen.add((p.id, s["prompt"]))
            if all(k in s["scores"] for k in objectives):
                pool.append({"id": p.id, "prompt": s["prompt"], "text": s["response"], "scores": s["scores"],
                             "weights": p.weights})
    pool += [dict(a) for a in extra if all(k in a.get("scores", {}) for k in objectives)]
    return pool


@dataclass
class Estimate:
    posterior: Posterior
    objectives: list[str]
    center: np.ndarray   # (K,) the standardization (choose.standardize) over the pool's answers
    scale: np.ndarray    # (K,)
    votes_used: int
    problems: list[str]  # votes left out of the likelihood, and why

    @property
    def weights(self) -> dict[str, float]:
        return dict(zip(self.objectives, map(float, self.posterior.mean)))

    @property
    def sd(self) -> dict[str, float]:
        return dict(zip(self.objectives, map(float, self.posterior.sd)))


def estimate_weighting(objectives: Sequence[str], maximize: Sequence[bool], votes: Sequence[Mapping],
                       pool: Sequence[Mapping], steps: int = 40) -> Estimate:
    """The posterior over the weighting after the votes (choose.posterior), scores standardized over
    the pool of answers the votes are drawn from."""
    if len(pool) < 2:
        raise ValueError("no scored answers to standardize the objectives over; evaluate the family first")
    center, scale = standardize([[a["scores"][k] for k in objectives] for a in pool], maximize)
    diffs, outcomes, used = vote_evidence(votes, objectives)
    problems = [f"vote on line {v.get('line', i + 1)}: {v['label']}, kept out of the estimate"
                if LABEL_OUTCOME[v["label"]] is None else
                f"vote on line {v.get('line', i + 1)}: its answers have no scores on every objective"
                for i, v in enumerate(votes) if i not in set(used)]
    post = posterior(diffs / scale, outcomes, len(objectives), steps)
    return Estimate(post, list(objectives), center, scale, len(used), problems)


def pair_key(prompt: str, ids: Sequence[str]) -> tuple:
    return (prompt, tuple(sorted(ids)))


def candidate_pairs(pool: Sequence[Mapping]) -> list[tuple[int, int]]:
    """Index pairs (i, j) of pool answers to the same prompt from different points with different text."""
    by_prompt: dict[str, list[int]] = {}
    for i, a in enumerate(pool):
        by_prompt.setdefault(a["prompt"], []).append(i)
    pairs = []
    for members in by_prompt.values():
        for x, i in enumerate(members):
            for j in members[x + 1:]:
                if pool[i]["id"] != pool[j]["id"] and " ".join(pool[i]["text"].split()) != " ".join(
                        pool[j]["text"].split()):
                    pairs.append((i, j))
    return pairs


def suggest_pair(estimate: Estimate, pool: Sequence[Mapping], asked: set = frozenset()) -> dict | None:
    """The most informative pair not asked yet (choose.information_gain): {"prompt", "ids": (a, b),
    "gain": nats}; None when every pair was asked."""
    pairs = [(i, j) for i, j in candidate_pairs(pool)
             if pair_key(pool[i]["prompt"], (pool[i]["id"], pool[j]["id"])) not in asked]
    if not pairs:
        return None
    scores = np.array([[a["scores"][k] for k in estimate.objectives] for a in pool])
    index = np.array(pairs)                                                            # (P, 2)
    diffs = (scores[index[:, 0]] - scores[index[:, 1]]) / estimate.scale
    shortlist = widest_pairs(diffs)  # a pool of many saved answers: the widest MAX_CANDIDATES pairs
    pairs, diffs = [pairs[n] for n in shortlist], diffs[shortlist]
    gain = information_gain(estimate.posterior, diffs)
    best = int(np.argmax(gain))
    i, j = pairs[best]
    return {"prompt": pool[i]["prompt"], "ids": (pool[i]["id"], pool[j]["id"]), "gain": float(gain[best])}


def utility_scorer(estimate: Estimate, scorer_of: Mapping[str, str]) -> str:
    """The estimated utility w . z as a scorer name (scorers.parse_linear): z_k = (s_k - center_k) /
    scale_k, so each scorer's coefficient is w_k / scale_k (the constant shifts every answer alike and
    is dropped). scorer_of: objective -> the scorer that measured it."""
    terms = [f"{scorer_of[k]}*{w / s:.6g}" for k, w, s in zip(estimate.objectives, estimate.posterior.mean,
                                                               estimate.scale)]
    return "linear:" + ";".join(terms)


def votes_as_pool(votes: Sequence[Mapping]) -> list[dict]:
    """The voted answers themselves as a pool (each with the scores its vote recorded), for a votes file
    read on its own, away from the family that answered."""
    return [{"id": p["id"], "prompt": v["prompt"], "text": text, "weights": p.get("weights"),
             "scores": {k: pair[side] for k, pair in v.get("scores", {}).items()}}
            for v in votes for side, (p, text) in enumerate(zip(v["points"], v["responses"]))]
