"""Benchmark 1 (issue 6): one MODPO training step, three ways, same model, batch and sequences.

  ours        ModpoTrainer on precomputed reference log-probs and margin rewards (modpo.train):
              a step is one policy forward over chosen + rejected and one backward.
  on-the-fly  the same loss, with the reference model and the margin reward model run inside every
              step (how the original MODPO code works: separate reference and margin models).
  trl         TRL's DPOTrainer in its fastest setting (precompute_ref_log_probs=True, same LoRA),
              plain DPO: no margin at all. Needs `pip install trl` (benchmarks/requirements.txt).

Step time = median over the timed steps of on_step_begin -> on_step_end (a TrainerCallback), after
warm-up steps; the one-off precompute is timed apart. All three run in this one process, one after
the other, on the same pairs (the first --pairs * steps of the demo family's preferences).

    python benchmarks/bench_train_step.py                         # SmolLM2-135M-Instruct, 8 pairs/step
    python benchmarks/bench_train_step.py --model tiny --steps 20  # quick check
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from transformers import TrainerCallback  # noqa: E402

from modpo.config import TrainConfig  # noqa: E402
from modpo.data import format_prompt, load_jsonl, tokenize_pairs  # noqa: E402
from modpo.margins import MarginSpec, pair_logps, precompute_columns  # noqa: E402
from modpo.models import load_base  # noqa: E402
from modpo.train import ModpoTrainer, lora_config, train_adapter  # noqa: E402


class StepTimer(TrainerCallback):
    def __init__(self):
        self.times: list[float] = []

    def on_step_begin(self, args, state, control, **kwargs):
        self._t = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
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
            ref_c, ref_r = pair_logps(self.ref_model, examples, self.pad_id)
            mar_c, mar_r = pair_logps(self.margin_model, examples, self.pad_id)
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
    model, _ = load_base(model_name)
    lcfg = lora_config(cfg)
    lcfg.init_lora_weights = False  # random A and B: a real, non-identity margin model
    peft_model = get_peft_model(model, lcfg)
    peft_model.save_pretrained(str(out), safe_serialization=True)
    return out


def run_ours(model_name, examples, cfg, margin_dir, pad_id):
    from modpo.models import attach_adapters
    model, _ = load_base(model_name)
    model = attach_adapters(model, {"margin": margin_dir})
    t = time.perf_counter()
    columns = precompute_columns(model, examples, pad_id, [MarginSpec("m", "implicit", adapter="margin")], cfg.beta,
                                 batch_size=cfg.batch_size)
    precompute = time.perf_counter() - t
    timer = StepTimer()
    with tempfile.TemporaryDirectory() as tmp:
        train_adapter(model, columns, [0.5, 0.5], cfg, Path(tmp) / "out", "policy", callbacks=[timer],
                      work_dir=Path(tmp) / "trainer")
    return timer.times, precompute


def run_on_the_fly(model_name, examples, cfg, margin_dir, pad_id):
    from peft import PeftModel
    model, _ = load_base(model_name)
    ref_model, _ = load_base(model_name)
    margin_model = PeftModel.from_pretrained(load_base(model_name)[0], str(margin_dir))
    placeholders = [{**ex, "reference_chosen_logps": 0.0, "reference_rejected_logps": 0.0,
                     "margin_chosen_rewards": [0.0], "margin_rejected_rewards": [0.0]} for ex in examples]
    timer = StepTimer()
    with tempfile.TemporaryDirectory() as tmp:
        train_adapter(model, placeholders, [0.5, 0.5], cfg, Path(tmp) / "out", "policy", callbacks=[timer],
                      work_dir=Path(tmp) / "trainer", trainer_class=OnTheFlyTrainer,
                      trainer_kwargs={"ref_model": ref_model, "margin_model": margin_model, "pad_id": pad_id})
    return timer.times


def run_trl(model_name, pairs, tokenizer, cfg):
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer
    model, _ = load_base(model_name)
    data = Dataset.from_list([{"prompt": format_prompt(tokenizer, p.prompt), "chosen": p.chosen, "rejected": p.rejected}
                              for p in pairs])
    timer = StepTimer()
    with tempfile.TemporaryDirectory() as tmp:
        args = DPOConfig(output_dir=tmp, per_device_train_batch_size=cfg.batch_size, max_steps=cfg.max_steps,
                         learning_rate=cfg.learning_rate, beta=cfg.beta, precompute_ref_log_probs=True,
                         precompute_ref_batch_size=cfg.batch_size, max_length=cfg.max_length, report_to=[],
                         logging_steps=1, save_strategy="no", dataloader_num_workers=0, seed=cfg.seed,
                         bf16=cfg.bf16)
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
    ap.add_argument("--json", help="also write the results here")
    a = ap.parse_args()
    torch.manual_seed(0)
    dataset = load_jsonl(a.data)
    objective = a.objective or dataset.objectives[0]
    _, tokenizer = load_base(a.model)
    total = a.steps + a.warmup
    pairs = dataset.pairs(objective)
    examples, dropped = tokenize_pairs(pairs, tokenizer, a.max_length)
    keep = {ex["row"] for ex in examples[:a.pairs * total]}
    pairs = [p for p in pairs if p.row in keep]
    examples = examples[:a.pairs * total]
    for ex, p in zip(examples, pairs):
        ex.update(prompt=p.prompt, chosen=p.chosen, rejected=p.rejected)
    lengths = [len(ex["prompt_ids"]) + max(len(ex["chosen_ids"]), len(ex["rejected_ids"])) for ex in examples]
    cfg = TrainConfig(lora_r=16, lora_alpha=32, learning_rate=1e-4, max_steps=total, batch_size=a.pairs,
                      warmup_ratio=0.0, max_length=a.max_length, logging_steps=1)
    print(f"model {a.model}; {a.pairs} pairs per step; {total} steps ({a.warmup} warm-up); "
          f"sequence length mean {statistics.mean(lengths):.0f}, max {max(lengths)} tokens; "
          f"torch threads {torch.get_num_threads()}", flush=True)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        margin_dir = make_margin_adapter(a.model, cfg, Path(tmp) / "margin")
        pad = tokenizer.pad_token_id
        times, precompute = run_ours(a.model, examples, cfg, margin_dir, pad)
        results["ours"] = {"step_s": summary(times, a.warmup), "precompute_s": precompute}
        print(f"ours        {results['ours']['step_s']:.3f} s/step (precompute once: {precompute:.1f} s "
              f"for {len(examples)} pairs)", flush=True)
        times = run_on_the_fly(a.model, examples, cfg, margin_dir, pad)
        results["on_the_fly"] = {"step_s": summary(times, a.warmup)}
        print(f"on-the-fly  {results['on_the_fly']['step_s']:.3f} s/step", flush=True)
    if not a.skip_trl:
        times, setup = run_trl(a.model, pairs, tokenizer, cfg)
        results["trl"] = {"step_s": summary(times, a.warmup), "setup_with_precompute_s": setup}
        print(f"trl DPO     {results['trl']['step_s']:.3f} s/step (setup incl. its precompute {setup:.1f} s)", flush=True)
    ours = results["ours"]["step_s"]
    print(f"\nours / on-the-fly = {ours / results['on_the_fly']['step_s']:.2f}x  (target <= 0.60x)")
    if "trl" in results:
        print(f"ours / TRL DPO    = {ours / results['trl']['step_s']:.2f}x  (target <= 1.00x)")
    if a.json:
        Path(a.json).write_text(json.dumps({"args": vars(a), "results": results}, indent=2))


if __name__ == "__main__":
    main()
