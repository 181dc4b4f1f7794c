"""The coherence check: a front can pass every statistical check while its models answer nonsense
(DESIGN §6), so every point of a family answers prompts nobody tuned for, and each answer is judged.

Per point: the mean relevance of its answers to their prompts (cosine of all-MiniLM-L6-v2
embeddings, the `relevance` scorer), the share of off-topic answers (relevance < OFF_TOPIC), and the
share of degenerate answers: under 3 words, a phrase loop (a word trigram said 3+ times), or one
answer given to 3+ different prompts. Answers come from the one answering pipeline with the family's
evaluation settings, so they are what the front measured.
"""
from __future__ import annotations

import json
from collections import Counter
from importlib import resources

import numpy as np

from .config import EvalSettings
from .evaluate import answer_points, policy_of
from .scorers import score

OFF_TOPIC = 0.15      # relevance under this is off topic
MIN_WORDS = 3         # fewer words is degenerate
LOOP_REPEATS = 3      # a word trigram said this often is a loop
SAME_ANSWER = 3       # one answer to this many prompts is degenerate


def default_prompts() -> list[str]:
    """The shipped prompt set written apart from the demo's train and evaluation prompts."""
    text = resources.files("modpo").joinpath("assets/coherence_prompts.json").read_text(encoding="utf-8")
    return json.loads(text)["prompts"]


def is_loop(text: str) -> bool:
    words = text.lower().split()
    trigrams = Counter(zip(words, words[1:], words[2:]))
    return bool(trigrams) and max(trigrams.values()) >= LOOP_REPEATS


def judge(prompts: list[str], answers: list[str]) -> dict:
    """Relevance and the degenerate / off-topic shares of one point's answers (pure but for the embedder)."""
    relevance = score("relevance", prompts, answers)
    repeated = {a for a, n in Counter(a.strip().lower() for a in answers).items() if n >= SAME_ANSWER}
    degenerate = np.array([len(a.split()) < MIN_WORDS or is_loop(a) or a.strip().lower() in repeated
                           for a in answers])
    off_topic = relevance < OFF_TOPIC
    return {"relevance": float(relevance.mean()), "degenerate": float(degenerate.mean()),
            "off_topic": float(off_topic.mean()), "bad": float((degenerate | off_topic).mean()), "n": len(answers),
            "answers": [{"prompt": p, "answer": a, "relevance": float(r), "degenerate": bool(d)}
                        for p, a, r, d in zip(prompts, answers, relevance, degenerate)]}


def check_family(model, tokenizer, family, prompts: list[str], settings: EvalSettings | None = None) -> dict:
    """point id -> judge(...) for every point of the family (base, adapters, merges, mixes), plus each
    point's relevance as a ratio to the base model's."""
    settings = settings or EvalSettings.from_recorded(_recorded(family))
    answers = answer_points(model, tokenizer, family.spec, prompts, {p.id: policy_of(p) for p in family.points},
                            settings, progress="coherence")
    report = {pid: judge(prompts, a["texts"]) for pid, a in answers.items()}
    base = report.get("base", {}).get("relevance")
    for r in report.values():
        r["relevance_vs_base"] = r["relevance"] / base if base else float("nan")
    return report


def _recorded(family) -> dict:
    from .family import recorded_eval_settings
    return recorded_eval_settings(family)
