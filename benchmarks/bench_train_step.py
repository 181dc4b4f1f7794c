"""Benchmark 1 (issue 6): one MODPO training step, three ways, same model, batch and sequences.

  ours        ModpoTrainer on precomputed reference log-probs and margin rewards (modpo.train):
              a step is one policy forward over chosen + rejected and one backward.
  on-the-fly  the same loss, with the reference model and the margin reward model run inside every
              step (how the original MODPO code works: separate reference and margin models).
  trl         TRL's DPOTrainer in its fastest setting (precompute_ref_log_probs=True, same LoRA, and
              gradient_checkpointing=False: DPOConfig defaults it to True, which recomputes the forward
              in the backward; --trl-checkpointing on|both times that default too), plain DPO: no
              margin at all. Needs `pip install trl` (benchmarks/requirements.txt).

Step time = median over the timed steps of on_step_begin -> on_step_end (a TrainerCallback), after
warm-up steps; the one-off precompute is timed apart. All three run in this one process, one after
the other, on the same pairs (the first --pairs * steps of the demo family's preferences). With
--rounds N each way runs N times, every other round in reverse order, and its step time is the median
over all its timed steps (each round's median is in the JSON).

    python benchmarks/bench_train_step.py                         # SmolLM2-135M-Instruct, 8 pairs/step
    python benchmarks/bench_train_step.py --model tiny --steps 20  # quick check

A random-weight model of realistic shape instead of a trained one (benchmarks/random_model.py;
nothing downloaded, SmolLM2's tokenizer), on a GPU with bf16 weights and bf16 autocast:

    python benchmarks/bench_train_step.py --random-config 1b --dtype bfloat16 --bf16 --lengthen 4 --max-length 512
    python benchmarks/bench_train_step.py --random-config tiny --steps 2 --warmup 1   # CPU check of that path

--lengthen N makes each response the concatenation of N consecutive responses of the data (longer
sequences, same texts for all three ways). On a GPU each step is bracketed by cuda synchronize, and
the peak GPU memory of each way is reported.
"""
from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # random_model

from transformers import TrainerCallback  # noqa: E402

from modpo.config import TrainConfig  # noqa: E402
from modpo.data import format_prompt, load_jsonl, tokenize_pairs  # noqa: E402
from modpo.margins import MarginSpec, pair_logps, precompute_columns  # noqa: E402
from modpo.models import load_base  # noqa: E402
from modpo.train import ModpoTrainer, lora_config, train_adapter  # noqa: E402

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
# Set in main(): where models go and in which dtype their weights load.
DEVICE = torch.device("cpu")
DTYPE = torch.float32


def sync():
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def load(model_name):
    """load_base in the chosen weight dtype, moved to the chosen device (the Trainer would move only
    the policy; the reference / margin models and the precompute need it too)."""
    model, tokenizer = load_base(model_name, dtype=DTYPE)
    return model.to(DEVICE), tokenizer


def fresh_memory():
    gc.collect()
    if DEVICE.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak_memory_gib():
    return round(torch.cuda.max_memory_allocated() / 2**30, 2) if DEVICE.type == "cuda" else None


class StepTimer(TrainerCallback):
    def __init__(self):
        self.times: list[float] = []

    def on_step_begin(self, args, state, control, **kwargs):
        sync()
        self._t = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        sync()
        self.times.append(time.perf_counter() - self._t)


class OnTheFlyTrainer(ModpoTrainer):
    """MODPO with the reference and margin log-probs computed inside every step."""

    def __init__(self, *args, ref_model, margin_model, pad_id, data_collator=None, **kwargs):
        super().__init__(*args, data_collator=collate_with_examples(data_collator), **kwargs)
        self.ref_model, self.margin_model, self.pad_id = ref_model.eval(), margin_model.eval(), pad_id

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        with torch.no_grad():
            n = inputs["input_ids"].shape[0] // 2
            examples = inputs["examples"]
            dev = inputs["input_ids"].device  # pair_logps returns CPU tensors; the policy's are on dev
            ref_c, ref_r = (t.to(dev) for t in pair_logps(self.ref_model, examples, self.pad_id))
            mar_c, mar_r = (t.to(dev) for t in pair_logps(self.margin_model, examples, self.pad_id))
            inputs = {**inputs, "reference_chosen_logps": ref_c, "reference_rejected_logps": ref_r,
                      "margin_chosen_rewards": (self.beta * (mar_c - ref_c)).reshape(n, 1),
                      "margin_rejected_rewards": (self.beta * (mar_r - ref_r)).reshape(n, 1)}
        return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)


def collate_with_examples(collator):
    def collate(examples):
        batch = collator(examples)
        batch["examples"] = examples
        return batch
    return collate


def make_margin_adapter(model_name: str, cfg: TrainConfig, out: Path) -> Path:
    """A LoRA margin model with non-zero weights (its values do not matter for timing, its cost does)."""
    from peft import get_peft_model
    model, _ = load_base(model_name, dtype=DTYPE)
    lcfg = lora_config(cfg)
    lcfg.init_lora_weights = False  # random A and B: a real, non-identity margin model
    peft_model = get_peft_model(model, lcfg)
    peft_model.save_pretrained(str(out), safe_serialization=True)
    return out


def run_ours(model_name, examples, cfg, margin_dir, pad_id):
    from modpo.models import attach_adapters
    model, _ = load(model_name)
    model = attach_adapters(model, {"margin": margin_dir})
    sync()
    t = time.perf_counter()
    columns = precompute_columns(model, examples, pad_id, [MarginSpec("m", "implicit", adapter="margin")], cfg.beta,
                                 batch_size=cfg.batch_size)
    sync()
    precompute = time.perf_counter() - t
    timer = StepTimer()
    with tempfile.TemporaryDirectory() as tmp:
        train_adapter(model, columns, [0.5, 0.5], cfg, Path(tmp) / "out", "policy", callbacks=[timer],
                      work_dir=Path(tmp) / "trainer")
    return timer.times, precompute


def run_on_the_fly(model_name, examples, cfg, margin_dir, pad_id):
    from peft import PeftModel
    model, _ = load(model_name)
    ref_model, _ = load(model_name)
    margin_model = PeftModel.from_pretrained(load(model_name)[0], str(margin_dir)).to(DEVICE)
    placeholders = [{**ex, "reference_chosen_logps": 0.0, "reference_rejected_logps": 0.0,
                     "margin_chosen_rewards": [0.0], "margin_rejected_rewards": [0.0]} for ex in examples]
    timer = StepTimer()
    with tempfile.TemporaryDirectory() as tmp:
        train_adapter(model, placeholders, [0.5, 0.5], cfg, Path(tmp) / "out", "policy", callbacks=[timer],
                      work_dir=Path(tmp) / "trainer", trainer_class=OnTheFlyTrainer,
                      trainer_kwargs={"ref_model": ref_model, "margin_model": margin_model, "pad_id": pad_id})
    return timer.times


def run_trl(model_name, pairs, tokenizer, cfg, gradient_checkpointing=False):
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer
    model, _ = load(model_name)
    data = Dataset.from_list([{"prompt": format_prompt(tokenizer, p.prompt), "chosen": p.chosen, "rejected": p.rejected}
                              for p in pairs])
    timer = StepTimer()
    with tempfile.TemporaryDirectory() as tmp:
        args = DPOConfig(output_dir=tmp, per_device_train_batch_size=cfg.batch_size, max_steps=cfg.max_steps,
                         learning_rate=cfg.learning_rate, beta=cfg.beta, precompute_ref_log_probs=True,
                         precompute_ref_batch_size=cfg.batch_size, max_length=cfg.max_length, report_to=[],
                         logging_steps=1, save_strategy="no", dataloader_num_workers=0, seed=cfg.seed,
                         bf16=cfg.bf16, gradient_checkpointing=gradient_checkpointing)
        t = time.perf_counter()
        trainer = DPOTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer,
                             peft_config=lora_config(cfg), callbacks=[timer])
        setup = time.perf_counter() - t
        trainer.train()
    return timer.times, setup


def summary(times: list[float], warmup: int) -> float:
    timed = times[warmup:]
    return statistics.median(timed) if timed else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--data", default="checkpoints/demo/data/preferences.jsonl")
    ap.add_argument("--objective", default=None, help="label column (default: the data's first objective)")
    ap.add_argument("--pairs", type=int, default=8, help="pairs per step")
    ap.add_argument("--steps", type=int, default=6, help="timed steps")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--max-length", type=int, default=192)
    ap.add_argument("--skip-trl", action="store_true")
    ap.add_argument("--trl-checkpointing", choices=["off", "on", "both"], default="off",
                    help="TRL's gradient checkpointing: off (fastest), on (DPOConfig's default), or time both")
    ap.add_argument("--random-config", choices=["tiny", "1b"], default=None,
                    help="a seeded random-weight Llama of this shape (benchmarks/random_model.py) instead of --model")
    ap.add_argument("--tokenizer", default="smollm2-135m-instruct",
                    help="tokenizer of the random model: a short name or a folder holding SmolLM2's tokenizer")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtype", default="float32", choices=sorted(DTYPES), help="weight dtype of every model")
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast in training (TrainConfig.bf16; GPU)")
    ap.add_argument("--lengthen", type=int, default=1,
                    help="each response = N consecutive responses of the data joined (longer sequences)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="run every way this many times, every other round in reverse order (an order effect, "
                         "such as a GPU's clocks rising, then shows as a gap between rounds)")
    ap.add_argument("--json", help="also write the results here")
    a = ap.parse_args()
    global DEVICE, DTYPE
    DEVICE, DTYPE = torch.device(a.device), DTYPES[a.dtype]
    torch.manual_seed(0)
    shape = None
    if a.random_config:
        from random_model import describe, random_model_folder
        a.model = random_model_folder(a.random_config, a.tokenizer, a.dtype)
        shape = describe(a.model)
    dataset = load_jsonl(a.data)
    objective = a.objective or dataset.objectives[0]
    from modpo.models import load_tokenizer
    tokenizer = load_tokenizer(a.model)
    total = a.steps + a.warmup
    pairs = dataset.pairs(objective)
    if a.lengthen > 1:
        from dataclasses import replace
        n = len(pairs)
        pairs = [replace(p, chosen=" ".join(pairs[(i + j) % n].chosen for j in range(a.lengthen)),
                         rejected=" ".join(pairs[(i + j) % n].rejected for j in range(a.lengthen)))
                 for i, p in enumerate(pairs)]
    examples, dropped = tokenize_pairs(pairs, tokenizer, a.max_length)
    keep = {ex["row"] for ex in examples[:a.pairs * total]}
    pairs = [p for p in pairs if p.row in keep]
    examples = examples[:a.pairs * total]
    for ex, p in zip(examples, pairs):
        ex.update(prompt=p.prompt, chosen=p.chosen, rejected=p.rejected)
    lengths = [len(ex["prompt_ids"]) + max(len(ex["chosen_ids"]), len(ex["rejected_ids"])) for ex in examples]
    if len(examples) < a.pairs * total:
        raise SystemExit(f"only {len(examples)} pairs fit in --max-length {a.max_length}; "
                         f"{a.pairs * total} needed ({dropped} dropped)")
    cfg = TrainConfig(lora_r=16, lora_alpha=32, learning_rate=1e-4, max_steps=total, batch_size=a.pairs,
                      warmup_ratio=0.0, max_length=a.max_length, logging_steps=1, bf16=a.bf16)
    seq = {"mean": round(statistics.mean(lengths), 1), "max": max(lengths),
           "padded_width_mean": round(statistics.mean(
               max(lengths[i:i + a.pairs]) for i in range(0, len(lengths), a.pairs)), 1)}
    env = {"device": torch.cuda.get_device_name(DEVICE) if DEVICE.type == "cuda" else "cpu",
           "torch": torch.__version__, "torch_threads": torch.get_num_threads()}
    for pkg in ("transformers", "peft", "trl"):
        try:
            env[pkg] = __import__(pkg).__version__
        except Exception as e:  # noqa: BLE001 (trl may be missing: reported, not fatal)
            env[pkg] = f"missing ({type(e).__name__})"
    print(f"model {a.model} {shape or ''}; weights {a.dtype}, bf16 autocast {a.bf16}, on {env['device']}; "
          f"{a.pairs} pairs per step; {total} steps ({a.warmup} warm-up); "
          f"sequence length mean {seq['mean']:.0f}, max {seq['max']} tokens (padded width per step, mean "
          f"{seq['padded_width_mean']:.0f}); {env}", flush=True)
    results = {}

    def save():
        if a.json:
            Path(a.json).write_text(json.dumps({"args": vars(a), "shape": shape, "sequences": seq, "env": env,
                                                "results": results}, indent=2))

    variants = {"off": [("trl", False)], "on": [("trl", True)],
                "both": [("trl", False), ("trl_checkpointing", True)]}[a.trl_checkpointing]
    ways = ["ours", "on_the_fly"] + ([] if a.skip_trl else [key for key, _ in variants])
    checkpointing_of = dict(variants)
    rounds = [ways if r % 2 == 0 else ways[::-1] for r in range(a.rounds)]  # every other round reversed
    with tempfile.TemporaryDirectory() as tmp:
        margin_dir = make_margin_adapter(a.model, cfg, Path(tmp) / "margin")
        pad = tokenizer.pad_token_id
        for r, order in enumerate(rounds):
            for key in order:
                fresh_memory()
                try:
                    extra = {}
                    if key == "ours":
                        times, extra["precompute_s"] = run_ours(a.model, examples, cfg, margin_dir, pad)
                    elif key == "on_the_fly":
                        times = run_on_the_fly(a.model, examples, cfg, margin_dir, pad)
                    else:
                        times, extra["setup_with_precompute_s"] = run_trl(a.model, pairs, tokenizer, cfg,
                                                                          checkpointing_of[key])
                        extra["gradient_checkpointing"] = checkpointing_of[key]
                except Exception as e:  # noqa: BLE001 (TRL is optional: the other two stand on their own)
                    if not key.startswith("trl"):
                        raise
                    import traceback
                    traceback.print_exc()
                    results[key] = {"error": f"{type(e).__name__}: {e}"}
                    print(f"{key:<11} failed: {type(e).__name__}: {e}", flush=True)
                    continue
                res = results.setdefault(key, {"rounds": []})
                res["rounds"].append({"round": r, "position": order.index(key), "step_s": summary(times, a.warmup),
                                      "steps_s": times, "peak_gib": peak_memory_gib(), **extra})
                res.update(extra)
                res["step_s"] = statistics.median(t for x in res["rounds"] for t in x["steps_s"][a.warmup:])
                res["peak_gib"] = max(x["peak_gib"] or 0 for x in res["rounds"]) or None
                note = ", ".join(f"{k} {v:.1f} s" if isinstance(v, float) else f"{k} {v}" for k, v in extra.items())
                print(f"round {r + 1} #{order.index(key) + 1} {key:<17} {res['rounds'][-1]['step_s']:.3f} s/step "
                      f"({note + '; ' if note else ''}peak {res['rounds'][-1]['peak_gib']} GiB)", flush=True)
                save()
    if a.rounds > 1:
        print("median over every round's timed steps:")
        for key in ways:
            if "step_s" in results.get(key, {}):
                print(f"  {key:<17} {results[key]['step_s']:.3f} s/step", flush=True)
    ours = results["ours"]["step_s"]
    results["ours_over_on_the_fly"] = ours / results["on_the_fly"]["step_s"]
    print(f"\nours / on-the-fly = {results['ours_over_on_the_fly']:.2f}x  (target <= 0.60x)")
    if "step_s" in results.get("trl", {}):
        results["ours_over_trl"] = ours / results["trl"]["step_s"]
        print(f"ours / TRL DPO    = {results['ours_over_trl']:.2f}x  (target <= 1.00x)")
    if "step_s" in results.get("trl_checkpointing", {}):
        results["ours_over_trl_checkpointing"] = ours / results["trl_checkpointing"]["step_s"]
        print(f"ours / TRL DPO with its default gradient checkpointing = "
              f"{results['ours_over_trl_checkpointing']:.2f}x")
    save()


if __name__ == "__main__":
    main()
