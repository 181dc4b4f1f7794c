"""Evaluation: every policy (adapter, base, merge) generates for the same held-out prompts with the
same settings, each response is scored by each objective's scorer, and we report mean and standard
error per objective plus a KL(pi || pi_ref) estimate from the policy's own responses.
"""
from __future__ import annotations

import time
from dataclasses import asdict

import numpy as np
import torch

from .config import EvalSettings  # noqa: F401 (re-exported)
from .family import FamilySpec, prompt_set_id
from .feedback import trim_capped
from .generate import BASE, GenerationSettings, generate, response_logps
from .scorers import score


def mean_stderr(values) -> dict:
    v = np.asarray(values, dtype=float)
    stderr = float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0
    return {"mean": float(v.mean()), "stderr": stderr, "n": int(len(v))}


def score_responses(spec: FamilySpec, prompts: list[str], responses: list[str]) -> dict[str, np.ndarray]:
    """objective name -> (N,) scores from that objective's scorer."""
    out = {}
    for o in spec.objectives:
        if not o.scorer:
            raise ValueError(f"objective {o.name!r} has no scorer to evaluate it with; set one in family.json")
        out[o.name] = score(o.scorer, prompts, responses)
    return out


def evaluate_points(model, tokenizer, spec: FamilySpec, prompts: list[str], points: dict[str, str],
                    settings: EvalSettings = EvalSettings()) -> dict[str, dict]:
    """Evaluate several policies in shared batches.

    points: point id -> peft adapter name in model, or "__base__" for the base model.
    Returns point id -> the eval.json record.
    """
    if not prompts:
        raise ValueError("no evaluation prompts")
    ids = list(points)
    rows_prompts = [p for _ in ids for p in prompts]
    rows_adapters = [points[i] for i in ids for _ in prompts]
    start = time.perf_counter()
    outputs = generate(model, tokenizer, rows_prompts, rows_adapters, settings.generation(), settings.batch_size,
                       progress=f"generate ({len(ids)} policies x {len(prompts)} prompts)", with_logps=True)
    response_ids = [o["response_ids"] for o in outputs]
    policy = torch.tensor([o["logp"] for o in outputs])  # (P * N,), from the generation's own logits
    reference = policy.clone()  # the base model's rows are their own reference
    adapted = [i for i, a in enumerate(rows_adapters) if a != BASE]
    if adapted:
        reference[adapted] = response_logps(model, tokenizer, [rows_prompts[i] for i in adapted],
                                            [response_ids[i] for i in adapted], [BASE] * len(adapted),
                                            settings.batch_size)
    log_ratios = (policy - reference).numpy()  # (P * N,)
    texts = [o["text"] for o in outputs]
    if settings.trim_capped:
        texts = trim_capped(texts, response_ids, tokenizer.eos_token_id)
    wall = (time.perf_counter() - start) / len(ids)
    n = len(prompts)
    return {point_id: build_record(spec, point_id, prompts, texts[k * n:(k + 1) * n],
                                   response_ids[k * n:(k + 1) * n], log_ratios[k * n:(k + 1) * n], settings, wall)
            for k, point_id in enumerate(ids)}


def build_record(spec: FamilySpec, point_id: str, prompts: list[str], texts: list[str], response_ids: list[list[int]],
                 log_ratios: np.ndarray, settings: EvalSettings, wall_time_s: float) -> dict:
    """The eval.json record of one policy from its responses to the evaluation prompts."""
    scores = score_responses(spec, prompts, texts)
    return {
        "id": point_id,
        "objectives": {name: mean_stderr(s) for name, s in scores.items()},
        "kl": {**mean_stderr(log_ratios),
               "estimator": "mean log pi(y|x) - log pi_ref(y|x) over the policy's own evaluation responses "
                            "(greedy: the log-ratio at the mode, not an unbiased KL)"
               if settings.temperature == 0 else "Monte Carlo, sampled responses"},
        "mean_response_tokens": float(np.mean([len(r) for r in response_ids])),
        "settings": asdict(settings),
        "prompt_set": {"n": len(prompts), "sha": prompt_set_id(prompts)},
        "samples": [{"prompt": prompts[i], "response": texts[i],
                     "scores": {name: float(s[i]) for name, s in scores.items()}}
                    for i in range(min(settings.samples_saved, len(prompts)))],
        "wall_time_s": round(wall_time_s, 2),
    }
