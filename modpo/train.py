"""DPO / MODPO training of one fresh LoRA adapter on transformers.Trainer.

The Trainer owns the loop, so the same code runs on one CPU, one GPU, or under
`accelerate launch` (DDP / FSDP / DeepSpeed). The reference and margin columns are precomputed
(margins.py): a step is one policy forward over chosen + rejected and one backward.
"""
from __future__ import annotations

import time
from pathlib import Path

import torch
from transformers import Trainer, TrainerCallback, TrainingArguments

from .config import TrainConfig
from .data import PairCollator
from .loss import (
    MIXTURE_TERM_POWER,
    check_weights,
    implicit_rewards,
    model_sequence_logps,
    modpo_loss,
    modpo_mixture_loss,
)
from .models import save_adapter
from .weights import validate_simplex_weights


def lora_config(cfg: TrainConfig):
    from peft import LoraConfig

    return LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=list(cfg.target_modules), bias="none", task_type="CAUSAL_LM")


class ModpoTrainer(Trainer):
    """Trainer whose loss is MODPO Eq. 7 on precomputed reference and margin columns; mixture: the sum over
    every objective's labels, w_j^k L_j (loss.modpo_mixture_loss, k = mixture_term_power; a subclass may set 1,
    the form the README measured first), the margin columns being every reward."""

    mixture_term_power = MIXTURE_TERM_POWER

    def __init__(self, *args, weights, beta: float, mixture: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.mixture = mixture
        self.weights = torch.tensor(validate_simplex_weights(weights), dtype=torch.float64) if mixture \
            else check_weights(weights)  # family order for a mixture, else target first
        self.beta = beta
        self._reward_stats: list[torch.Tensor] = []

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        logps = model_sequence_logps(model, inputs["input_ids"], inputs["attention_mask"], inputs["labels"])  # (2B,)
        n = logps.shape[0] // 2
        policy_chosen_logps, policy_rejected_logps = logps[:n], logps[n:]
        if self.mixture:
            losses = modpo_mixture_loss(policy_chosen_logps, policy_rejected_logps,
                                        inputs["reference_chosen_logps"], inputs["reference_rejected_logps"],
                                        inputs["margin_chosen_rewards"], inputs["margin_rejected_rewards"],
                                        self.weights.tolist(), self.beta, self.mixture_term_power)  # (B,)
        else:
            losses = modpo_loss(policy_chosen_logps, policy_rejected_logps,
                                inputs["reference_chosen_logps"], inputs["reference_rejected_logps"],
                                inputs["margin_chosen_rewards"], inputs["margin_rejected_rewards"],
                                self.weights, self.beta, inputs.get("chosen_probs"))  # (B,)
        with torch.no_grad():
            chosen_rewards = implicit_rewards(policy_chosen_logps, inputs["reference_chosen_logps"], self.beta)
            rejected_rewards = implicit_rewards(policy_rejected_logps, inputs["reference_rejected_logps"], self.beta)
            self._reward_stats.append((chosen_rewards > rejected_rewards).float().mean().detach())
        loss = losses.mean()
        return (loss, {"logps": logps}) if return_outputs else loss

    def log(self, logs: dict, *args, **kwargs):
        if self._reward_stats and "loss" in logs:
            logs["reward_accuracy"] = round(float(torch.stack(self._reward_stats).mean()), 4)
            self._reward_stats.clear()
        super().log(logs, *args, **kwargs)


def training_arguments(cfg: TrainConfig, work_dir, quiet: bool) -> TrainingArguments:
    """The Trainer's arguments for a TrainConfig (every adapter kind trains the same way); quiet: no
    progress bar (a report callback shows progress instead)."""
    return TrainingArguments(
        output_dir=str(work_dir), per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum, learning_rate=cfg.learning_rate,
        num_train_epochs=cfg.epochs, max_steps=cfg.max_steps, warmup_steps=cfg.warmup_ratio,
        lr_scheduler_type="linear", logging_steps=cfg.logging_steps, save_strategy="no", report_to=[],
        remove_unused_columns=False, seed=cfg.seed, data_seed=cfg.seed, bf16=cfg.bf16,
        disable_tqdm=quiet, dataloader_num_workers=0)


class ProgressCallback(TrainerCallback):
    """Calls report(step, total, loss_curve) after every logged step (job status files, progress bars)."""

    def __init__(self, report):
        self.report = report

    def on_log(self, args, state, control, logs=None, **kwargs):
        curve = [[h["step"], h["loss"]] for h in state.log_history if "loss" in h]
        self.report(state.global_step, state.max_steps, curve)


def train_adapter(model, train_examples, weights, cfg: TrainConfig, output_dir: Path, adapter_name: str,
                  report=None, work_dir: Path | None = None, callbacks: list | None = None,
                  trainer_class: type = ModpoTrainer, trainer_kwargs: dict | None = None,
                  mixture: bool = False) -> tuple[dict, object]:
    """Train a fresh LoRA adapter `adapter_name` on model and save it (peft format) to output_dir.

    model: the base model, or a PeftModel already holding other adapters (they stay frozen).
    train_examples: list or datasets.Dataset of pairs with precomputed columns (margins.py).
    weights: target objective first, on the simplex; (1,) is plain DPO. mixture: every objective's labels
    (ModpoTrainer's mixture), weights in family order and one margin column per objective.
    adapter_name: the name inside the PeftModel (no dots: torch module names cannot hold them).
    callbacks: extra TrainerCallbacks; trainer_class / trainer_kwargs: a ModpoTrainer subclass and its
    extra arguments (benchmarks/bench_train_step.py uses one that computes the columns on the fly).
    Returns (record for meta.json: steps, loss curve, wall time, config; the PeftModel).
    """
    from peft import get_peft_model
    from transformers import set_seed

    w = torch.tensor(validate_simplex_weights(weights)) if mixture else check_weights(weights)
    if len(train_examples) == 0:
        raise ValueError("no training pairs left (all dropped as too long, or none labelled); "
                         "raise max_length or check the data")
    n_margins = len(train_examples[0]["margin_chosen_rewards"])
    if n_margins != len(w) - (0 if mixture else 1):
        raise ValueError(f"weights has {len(w)} entries but the data carries {n_margins} margin columns; "
                         "recompute the margins for this family's objectives")
    set_seed(cfg.seed)  # LoRA A is initialised from the global RNG
    if hasattr(model, "peft_config"):
        model.add_adapter(adapter_name, lora_config(cfg))
        model.set_adapter(adapter_name)
    else:
        model = get_peft_model(model, lora_config(cfg), adapter_name=adapter_name)
    for name, param in model.named_parameters():  # only this run's adapter trains
        param.requires_grad = f".{adapter_name}." in name and "lora_" in name
    args = training_arguments(cfg, work_dir or Path(output_dir).parent / "trainer", quiet=report is not None)
    pad_id = model.config.pad_token_id if model.config.pad_token_id is not None else 0
    trainer = trainer_class(model=model, args=args, train_dataset=train_examples, data_collator=PairCollator(pad_id),
                            weights=w.tolist(), beta=cfg.beta, **({"mixture": True} if mixture else {}),
                            **(trainer_kwargs or {}),
                            callbacks=([ProgressCallback(report)] if report else []) + list(callbacks or []))
    start = time.perf_counter()
    trainer.train()
    wall = time.perf_counter() - start
    if trainer.is_world_process_zero():
        save_adapter(model, adapter_name, Path(output_dir))
    history = trainer.state.log_history
    return {"steps": trainer.state.global_step, "wall_time_s": round(wall, 2),
            **({"mixture_term_power": trainer.mixture_term_power} if mixture else {}),
            "loss_curve": [[h["step"], h["loss"]] for h in history if "loss" in h],
            "reward_accuracy": [[h["step"], h["reward_accuracy"]] for h in history if "reward_accuracy" in h],
            "train_pairs": len(train_examples), "config": cfg.to_json()}, model
