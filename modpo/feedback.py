"""On-policy preference pairs labelled by offline scorers (AI feedback).

Sample two responses per prompt from a model, score both with each objective's scorer, and
label the better one per objective (by its direction); equal scores are a tie (no label).
"""
from __future__ import annotations

import numpy as np

from .data import PreferenceDataset, PreferenceRow
from .family import Objective
from .generate import GenerationSettings, generate, trim_capped
from .scorers import score


def label(scores_a: float, scores_b: float, maximize: bool, tie_tol: float = 1e-9) -> int | None:
    if abs(scores_a - scores_b) <= tie_tol:
        return None
    return int((scores_b > scores_a) == maximize)


def sample_preferences(model, tokenizer, prompts: list[str], objectives: list[Objective],
                       settings: GenerationSettings, batch_size: int = 32, source: str = "on-policy samples",
                       log=print) -> PreferenceDataset:
    """Two sampled responses per prompt, labelled on every objective by its scorer.

    A response that hit the token cap is trimmed to its last complete sentence (`trim_to_sentence`),
    or kept whole when it has none.
    Rows whose two responses are identical or empty are left out (no preference to learn).
    """
    doubled = [p for p in prompts for _ in range(2)]
    outputs = generate(model, tokenizer, doubled, None, settings, batch_size, progress="sample pairs")
    raw = [o["text"] for o in outputs]
    texts = trim_capped(raw, [o["response_ids"] for o in outputs], tokenizer.eos_token_id)
    capped = sum(tokenizer.eos_token_id not in o["response_ids"] for o in outputs)
    log(f"{capped} of {len(outputs)} responses hit the {settings.max_new_tokens}-token cap; "
        f"{sum(t != r for t, r in zip(texts, raw))} were trimmed to their last complete sentence "
        "(the rest had none, or ended there, and are kept whole)")
    scores = {o.name: score(o.scorer, doubled, texts) for o in objectives}
    rows = []
    for i, prompt in enumerate(prompts):
        a, b = texts[2 * i], texts[2 * i + 1]
        if not a.strip() or not b.strip() or a.strip() == b.strip():
            continue
        prefs = {o.name: label(scores[o.name][2 * i], scores[o.name][2 * i + 1], o.maximize) for o in objectives}
        rows.append(PreferenceRow(prompt, (a, b), prefs,
                                  {o.name: (float(scores[o.name][2 * i]), float(scores[o.name][2 * i + 1]))
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
