"""On-policy preference pairs labelled by offline scorers (AI feedback).

Sample two responses per prompt from a model, score both with each objective's scorer, and
label the better one per objective (by its direction); equal scores are a tie (no label).

Labels that always pick the higher score have no natural scale: the DPO reward they imply grows
without bound, and a small model trained on them drifts far from its reference. `bradley_terry_labels`
draws them instead from a Bradley-Terry model of the scorer difference at a stated scale,
P(y1 preferred over y0) = sigmoid(r(x, y1) - r(x, y0)), r = scale * score (`reward_scales`), so the
true reward r is known in nats, the explicit margins can use the same r, and the MODPO optimum
pi_ref * exp(w . r / beta) is known in closed form (DESIGN §1).
"""
from __future__ import annotations

import numpy as np

from .data import PreferenceDataset, PreferenceRow
from .family import Objective
from .generate import TRIM_RULE, GenerationSettings, generate, trim_capped
from .scorers import score


def label(scores_a: float, scores_b: float, maximize: bool, tie_tol: float = 1e-9) -> int | None:
    if abs(scores_a - scores_b) <= tie_tol:
        return None
    return int((scores_b > scores_a) == maximize)


def preference_probability(scale: float, better: float, worse: float) -> float:
    """Bradley-Terry: P(the answer scored `better` is preferred over the one scored `worse`) =
    sigmoid(scale * (better - worse))."""
    return float(1.0 / (1.0 + np.exp(-scale * (better - worse))))


def contrast_pairs(scores: dict[str, np.ndarray], texts: list[str],
                   matched: dict[str, tuple[str, float]] | None = None) -> list[tuple[int, int]]:
    """For k responses to one prompt: per objective, the pair (i, j), i < j, whose scores differ most,
    skipping pairs with an empty or repeated response; duplicates kept once, in objective order.

    scores: objective -> (k,) scores of the k responses. With k = 2 this is the one pair (when usable).
    matched: objective -> (other, tolerance): that objective's pair is chosen only among pairs whose
    `other` scores differ by at most tolerance (none when no pair does). Relevance pairs of answers of
    about the same length (other = brevity, tolerance 5 words) keep its labels from rewarding length.
    """
    matched = matched or {}
    for name, (other, tolerance) in matched.items():
        if name not in scores or other not in scores:
            raise ValueError(f"matched pairs {name!r} on {other!r}: both must be scored objectives, "
                             f"got {sorted(scores)}")
        if not tolerance >= 0:
            raise ValueError(f"matched pairs {name!r} on {other!r}: the tolerance must be >= 0, got {tolerance}")
    usable = [i for i, t in enumerate(texts) if t.strip()]
    candidates = [(i, j) for a, i in enumerate(usable) for j in usable[a + 1:] if texts[i].strip() != texts[j].strip()]
    chosen = []
    for name, values in scores.items():
        allowed = candidates
        if name in matched:
            other, tolerance = matched[name]
            allowed = [(i, j) for i, j in candidates if abs(scores[other][i] - scores[other][j]) <= tolerance]
        if not allowed:
            continue
        pair = max(allowed, key=lambda ij: (abs(values[ij[0]] - values[ij[1]]), -ij[0], -ij[1]))
        if pair not in chosen:
            chosen.append(pair)
    return chosen


def sample_preferences(model, tokenizer, prompts: list[str], objectives: list[Objective],
                       settings: GenerationSettings, batch_size: int = 32, source: str = "on-policy samples",
                       log=print, samples_per_prompt: int = 2,
                       matched: dict[str, tuple[str, float]] | None = None,
                       trim_rule: int = TRIM_RULE) -> PreferenceDataset:
    """Sampled responses to every prompt, paired and labelled on every objective by its scorer.

    With samples_per_prompt = k > 2, each prompt gives up to one row per objective: the pair of its k
    responses whose scores on that objective differ most (contrast_pairs), so every objective has
    pairs that differ in it, not only in the others; `matched` restricts an objective's pairs as there.
    A response that hit the token cap is trimmed to its last complete sentence (`trim_to_sentence` by
    trim_rule), or kept whole when it has none.
    Pairs whose two responses are identical or empty are left out (no preference to learn).
    """
    k = samples_per_prompt
    if k < 2:
        raise ValueError(f"samples_per_prompt must be >= 2 (a pair), got {k}")
    repeated = [p for p in prompts for _ in range(k)]
    outputs = generate(model, tokenizer, repeated, None, settings, batch_size, progress="sample responses")
    raw = [o["text"] for o in outputs]
    texts = trim_capped(raw, [o["response_ids"] for o in outputs], tokenizer.eos_token_id, trim_rule)
    capped = sum(tokenizer.eos_token_id not in o["response_ids"] for o in outputs)
    log(f"{capped} of {len(outputs)} responses hit the {settings.max_new_tokens}-token cap; "
        f"{sum(t != r for t, r in zip(texts, raw))} were trimmed to their last complete sentence "
        "(the rest had none, or ended there, and are kept whole)")
    scores = {o.name: score(o.scorer, repeated, texts) for o in objectives}
    rows = []
    for n, prompt in enumerate(prompts):
        block = slice(n * k, (n + 1) * k)
        for i, j in contrast_pairs({name: s[block] for name, s in scores.items()}, texts[block], matched):
            a, b = n * k + i, n * k + j
            prefs = {o.name: label(scores[o.name][a], scores[o.name][b], o.maximize) for o in objectives}
            rows.append(PreferenceRow(prompt, (texts[a], texts[b]), prefs,
                                      {o.name: (float(scores[o.name][a]), float(scores[o.name][b]))
                                       for o in objectives}))
    if not rows:
        raise ValueError("every sampled pair was empty or identical; sample with a higher temperature")
    return PreferenceDataset([o.name for o in objectives], rows, source)


def conflict(dataset: PreferenceDataset, a: str, b: str) -> dict:
    """How much two objectives disagree on the sampled responses.

    Pearson and Spearman correlation of the two scores over all responses, and the share of pairs
    labelled on both where the labels disagree.
    """
    from scipy.stats import pearsonr, spearmanr

    sa = np.array([s for r in dataset.rows for s in r.scores[a]])
    sb = np.array([s for r in dataset.rows for s in r.scores[b]])
    both = [(r.preferences[a], r.preferences[b]) for r in dataset.rows
            if r.preferences[a] is not None and r.preferences[b] is not None]
    return {"objectives": [a, b], "n_responses": int(len(sa)),
            "pearson": float(pearsonr(sa, sb)[0]), "spearman": float(spearmanr(sa, sb)[0]),
            "pairs_labelled_on_both": len(both),
            "label_disagreement": float(np.mean([x != y for x, y in both])) if both else float("nan")}


def reward_scales(dataset: PreferenceDataset, objectives: list[Objective], nats_per_sd: float) -> dict[str, float]:
    """objective name -> the factor r = factor * score that makes one standard deviation of the dataset's
    response scores worth nats_per_sd nats of reward (negative for an objective to minimize)."""
    if not nats_per_sd > 0:
        raise ValueError(f"nats_per_sd must be > 0, got {nats_per_sd}")
    out = {}
    for o in objectives:
        values = np.array([s for r in dataset.rows for s in r.scores.get(o.name, ())], dtype=float)
        sd = float(values.std()) if len(values) > 1 else 0.0
        if not sd > 0:
            raise ValueError(f"objective {o.name!r}: its scores do not vary over the dataset's responses, so they "
                             "cannot be put on a reward scale; score the responses, or use another scorer")
        out[o.name] = (1.0 if o.maximize else -1.0) * nats_per_sd / sd
    return out


def bradley_terry_labels(dataset: PreferenceDataset, scales: dict[str, float], seed: int = 0) -> PreferenceDataset:
    """The dataset with each objective's label drawn from P(response 1 preferred) = sigmoid(scale * (s1 - s0)).

    Deterministic for a seed: one uniform draw per row and objective, in row order then objective order.
    Rows keep their scores; objectives without a scale keep their labels.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for row in dataset.rows:
        preferences = dict(row.preferences)
        for name, scale in scales.items():
            s0, s1 = row.scores[name]
            preferences[name] = int(rng.random() < preference_probability(scale, s1, s0))
        rows.append(PreferenceRow(row.prompt, row.responses, preferences, row.scores))
    return PreferenceDataset(list(dataset.objectives), rows, dataset.source)


def chosen_probability(row: PreferenceRow, objective: str, scale: float) -> float:
    """P(the row's chosen response on objective is preferred) under the Bradley-Terry model that drew its
    label: sigmoid(scale * (score_chosen - score_rejected)) (loss.modpo_loss's chosen_probs)."""
    label = row.preferences.get(objective)
    if label is None or objective not in row.scores:
        raise ValueError(f"row {row.prompt[:40]!r} has no label or no scores on {objective!r}")
    scores = row.scores[objective]
    return preference_probability(scale, scores[label], scores[1 - label])


def closed_form_means(dataset: PreferenceDataset, scales: dict[str, float], weights, beta: float) -> dict[str, float]:
    """Each objective's mean score under the weighting's closed-form optimum pi* ∝ pi_ref * exp(w . r / beta)
    (DESIGN §1), estimated from the dataset's sampled responses by self-normalized importance weighting.

    Per prompt, the distinct responses (their scores s, (K, n)) get weights ∝ exp(w . (scale * s) / beta); the
    estimate is the mean over prompts of the weighted score. The responses stand in for draws from pi_ref (the
    demo samples at temperature 0.7, sharper than pi_ref, and has 2-4 per prompt), so this is where training
    aims, not a number to reach to the decimal. weights: objective name -> weight, on the simplex.
    """
    names = list(scales)
    w = np.array([float(weights[o]) for o in names])
    if not (np.all(w >= 0) and abs(w.sum() - 1) < 1e-6):
        raise ValueError(f"weights must be >= 0 and sum to 1 over {names}, got {weights}")
    if not beta > 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    per_prompt: dict[str, dict[str, list[float]]] = {}
    for row in dataset.rows:
        missing = [o for o in names if o not in row.scores]
        if missing:
            raise ValueError(f"row {row.prompt[:40]!r} has no scores on {missing}: the closed form needs every "
                             "objective's score of every answer; score the answers, or leave that objective out")
        answers = per_prompt.setdefault(row.prompt, {})
        for i, response in enumerate(row.responses):
            answers[response] = [float(row.scores[o][i]) for o in names]
    scale = np.array([scales[o] for o in names])
    means = []
    for answers in per_prompt.values():
        s = np.array(list(answers.values()))  # (K, n)
        logits = (s * scale) @ w / beta
        p = np.exp(logits - logits.max())
        means.append(p @ s / p.sum())
    return dict(zip(names, np.mean(means, axis=0).tolist()))
