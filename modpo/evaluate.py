"""Answering and evaluation: the one pipeline from points to scored answers.

`answer_points` makes every kind of point (the base model, a trained or merged adapter, a
decoding-time mix) answer a list of prompts with given settings: generate, trim answers cut by the
token cap (when the settings say so), score with each objective's scorer. Evaluation, previews, the
Compare page and the benchmarks all call it, so a point is measured the same way wherever it is.

`evaluate_points` adds the reference pass for the KL estimate and builds each eval.json record:
mean and standard error per objective, plus KL(pi || pi_ref) estimated on the policy's own answers.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np

from .config import EvalSettings  # noqa: F401 (re-exported)
from .family import FamilySpec, prompt_set_id
from .generate import BASE, generate, mix_generate, response_logps, trim_capped
from .scorers import score


@dataclass(frozen=True)
class Mix:
    """A decoding-time mix of adapters already loaded in the model (peft names) with its coefficients."""
    adapters: tuple[str, ...]
    coefficients: tuple[float, ...]


Policy = str | Mix  # a peft adapter name, BASE for the base model, or a Mix


def policy_of(point) -> Policy:
    """How a family point answers (its adapters must be attached: see `adapters_of`)."""
    from .models import peft_name
    if point.kind == "base":
        return BASE
    if point.kind == "mix":
        recipe = point.meta["recipe"]
        return Mix(tuple(peft_name(s) for s in recipe["sources"]), tuple(recipe["coefficients"]))
    return peft_name(point.id)


def adapters_of(family, points) -> dict:
    """peft name -> folder of every adapter the points need (a mix needs its sources; a conditioned point
    that stores no weights loads its exact export from the conditioned adapter)."""
    from .models import peft_name
    needed = {}
    for p in points:
        sources = p.meta["recipe"]["sources"] if p.kind == "mix" else [] if p.kind == "base" else [p.id]
        for source in sources:
            point = p if source == p.id else family.point(source)
            needed[peft_name(point.id)] = adapter_folder(family, point)
    return needed


def adapter_folder(family, point):
    """The folder holding the point's peft LoRA files."""
    if point.kind == "conditioned" and not (point.path / "adapter_model.safetensors").exists():
        from .conditioned import exported_folder
        names = family.spec.objective_names
        return exported_folder(family.root, point.meta["conditioned"], [point.weights[n] for n in names])
    return point.path


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


def answer_points(model, tokenizer, spec: FamilySpec, prompts: list[str], policies: dict[str, Policy],
                  settings: EvalSettings, progress: str | None = None, on_progress=None,
                  streamer=None) -> dict[str, dict]:
    """Each point's answers to every prompt: point id -> {"texts", "response_ids", "logps", "capped",
    "scores": {objective: (N,)}}. logps: the summed log-prob of each answer under the point's own policy.

    Adapters and the base model share batches (one row per point x prompt, generate.rows_run); each
    mix decodes with its own sources. Answers cut by the cap are trimmed to their last complete
    sentence when settings.trim_capped, before scoring: shown and scored as measured.
    on_progress: called as on_progress(answers_done, answers_total) as batches finish.
    streamer: a generate.RowStreamer shown the batched policies' tokens as they come (its rows are set
    to (point id, prompt)); mixes are not streamed.
    """
    if not prompts:
        raise ValueError("no prompts to answer")
    outputs: dict[str, list[dict]] = {}
    total = len(prompts) * len(policies)
    batched = [i for i, p in policies.items() if not isinstance(p, Mix)]
    report = (lambda done, _: on_progress(done, total)) if on_progress else None
    if streamer is not None:
        streamer.rows = [(i, p) for i in batched for p in prompts]
    if batched:
        rows = generate(model, tokenizer, [p for _ in batched for p in prompts],
                        [policies[i] for i in batched for _ in prompts], settings.generation(), settings.batch_size,
                        progress=progress and f"{progress} ({len(batched)} policies x {len(prompts)} prompts)",
                        with_logps=True, on_batch=report, streamer=streamer)
        outputs.update({i: rows[k * len(prompts):(k + 1) * len(prompts)] for k, i in enumerate(batched)})
    for i, mix in policies.items():
        if isinstance(mix, Mix):
            rows = []
            for start in range(0, len(prompts), settings.batch_size):
                rows += mix_generate(model, tokenizer, prompts[start:start + settings.batch_size], list(mix.adapters),
                                     list(mix.coefficients), settings.generation())
                if on_progress:
                    on_progress(sum(len(o) for o in outputs.values()) + len(rows), total)
            outputs[i] = [{**r, "logp": r["mixed_logp"]} for r in rows]
    ids = list(policies)
    n = len(prompts)
    response_ids = [r["response_ids"] for i in ids for r in outputs[i]]
    texts = [r["text"] for i in ids for r in outputs[i]]
    if settings.trim_capped:
        texts = trim_capped(texts, response_ids, tokenizer.eos_token_id, settings.trim_rule)
    scores = score_responses(spec, prompts * len(ids), texts)  # one scorer call over every answer
    return {i: {"texts": texts[k * n:(k + 1) * n], "response_ids": response_ids[k * n:(k + 1) * n],
                "logps": np.array([r["logp"] for r in outputs[i]]),
                "capped": [tokenizer.eos_token_id not in r for r in response_ids[k * n:(k + 1) * n]],
                "scores": {o: s[k * n:(k + 1) * n] for o, s in scores.items()}}
            for k, i in enumerate(ids)}


def evaluate_points(model, tokenizer, spec: FamilySpec, prompts: list[str], policies: dict[str, Policy],
                    settings: EvalSettings | None = None, on_progress=None) -> dict[str, dict]:
    """Evaluate several policies in shared batches; returns point id -> the eval.json record.

    The reference log-probs (the KL estimate's other half) take one base-model pass over the distinct
    answers of every point but the base model, whose answers are their own reference: the base model's
    log-prob of an answer depends only on the prompt and the answer, and points often give the same answer
    to a prompt (on the demo 4,724 distinct of 8,640, most of the repeats on the conditioned front).
    """
    settings = settings or EvalSettings()
    start = time.perf_counter()
    answers = answer_points(model, tokenizer, spec, prompts, policies, settings, progress="generate",
                            on_progress=on_progress)
    rows = [(i, k) for i in policies if policies[i] != BASE for k in range(len(prompts))]
    reference = {}
    if rows:
        keys = [(k, tuple(answers[i]["response_ids"][k])) for i, k in rows]  # (prompt index, answer ids)
        distinct = sorted(set(keys), key=lambda key: (len(prompts[key[0]]) + 4 * len(key[1]), key))  # less padding
        logps = response_logps(model, tokenizer, [prompts[k] for k, _ in distinct], [list(r) for _, r in distinct],
                               [BASE] * len(distinct), settings.batch_size)
        by_key = dict(zip(distinct, logps.tolist()))
        for (i, _), key in zip(rows, keys):
            reference.setdefault(i, []).append(by_key[key])
    wall = (time.perf_counter() - start) / len(policies)
    return {i: build_record(i, prompts, a, a["logps"] - np.array(reference.get(i, a["logps"])), settings, wall)
            for i, a in answers.items()}


def build_record(point_id: str, prompts: list[str], answers: dict, log_ratios: np.ndarray, settings: EvalSettings,
                 wall_time_s: float) -> dict:
    """The eval.json record of one policy from its answers (answer_points) and log-ratios to the reference."""
    scores = answers["scores"]
    return {
        "id": point_id,
        "objectives": {name: mean_stderr(s) for name, s in scores.items()},
        "kl": {**mean_stderr(log_ratios),
               "estimator": "mean log pi(y|x) - log pi_ref(y|x) over the policy's own evaluation responses "
                            "(greedy: the log-ratio at the mode, not an unbiased KL)"
               if settings.temperature == 0 else "Monte Carlo, sampled responses"},
        "mean_response_tokens": float(np.mean([len(r) for r in answers["response_ids"]])),
        "settings": asdict(settings),
        "prompt_set": {"n": len(prompts), "sha": prompt_set_id(prompts)},
        "samples": [{"prompt": prompts[i], "response": answers["texts"][i], "capped": bool(answers["capped"][i]),
                     "scores": {name: float(s[i]) for name, s in scores.items()}}
                    for i in range(min(settings.samples_saved, len(prompts)))],
        "wall_time_s": round(wall_time_s, 2),
    }
