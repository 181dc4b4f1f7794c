"""Reference log-probs and margin rewards, computed once per dataset and stored as columns.

Two kinds of margin reward r_j for a non-target objective j (DESIGN §1), both "higher is better":
    implicit  a LoRA adapter trained with DPO on D_j:  r_j = beta * (log pi_j(y|x) - log pi_ref(y|x))
    explicit  a named scorer:                          r_j = scale * sign * scorer(x, y)
              sign is -1 for an objective to minimize. scale must put the scorer on the
              beta * log-ratio scale for the weights to mean what they say: with beta 0.1, a
              scale of 0.01 on a word count makes 10 words worth one nat of log-ratio times beta.

Reference and margins depend only on (x, y) and frozen weights, so every weighting of a family
reuses them: each MODPO step is then one policy forward over chosen + rejected, like a DPO step.
"""
from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch

from .data import pad_pairs
from .loss import implicit_rewards, model_sequence_logps
from .scorers import score


@dataclass(frozen=True)
class MarginSpec:
    objective: str
    kind: str                  # "implicit" | "explicit"
    adapter: str | None = None  # implicit: adapter name loaded in the PeftModel
    scorer: str | None = None   # explicit: scorer name
    scale: float = 1.0
    sign: float = 1.0           # -1 when the objective is minimized

    @classmethod
    def from_json(cls, objective: str, obj: dict, maximize: bool = True) -> "MarginSpec":
        kind = obj.get("kind")
        if kind == "implicit" and obj.get("adapter"):
            return cls(objective, kind, adapter=obj["adapter"])
        if kind == "explicit" and obj.get("scorer"):
            return cls(objective, kind, scorer=obj["scorer"], scale=float(obj.get("scale", 1.0)),
                       sign=1.0 if maximize else -1.0)
        raise ValueError(f"margin for {objective!r} must be {{'kind': 'implicit', 'adapter': ...}} or "
                         f"{{'kind': 'explicit', 'scorer': ..., 'scale': ...}}, got {obj!r}")


@torch.no_grad()
def pair_logps(model, examples: list[dict], pad_token_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(chosen_logps (B,), rejected_logps (B,)) of one batch under model as it is configured now."""
    batch = pad_pairs(examples, pad_token_id)
    device = next(model.parameters()).device
    logps = model_sequence_logps(model, batch["input_ids"].to(device), batch["attention_mask"].to(device),
                                 batch["labels"].to(device)).cpu()  # (2B,)
    return logps[:len(examples)], logps[len(examples):]


def reference_context(model):
    """The reference policy is the base with every adapter disabled, never a second copy."""
    return model.disable_adapter() if hasattr(model, "disable_adapter") and hasattr(model, "peft_config") \
        else nullcontext()


@torch.no_grad()
def precompute_columns(model, examples: list[dict], pad_token_id: int, margins: list[MarginSpec],
                       beta: float, batch_size: int = 8, progress: bool = False,
                       known_reference: dict | None = None) -> list[dict]:
    """Add reference_{chosen,rejected}_logps and margin_{chosen,rejected}_rewards (n-1 floats) to examples.

    examples must carry prompt_ids / chosen_ids / rejected_ids, and the texts (prompt, chosen,
    rejected) when a margin is explicit. One pass over the data; returns new dicts.
    known_reference: (row, prompt, response) -> reference log-prob already computed for another
    objective's pairs of the same rows (the responses are the same, only the labels differ); a batch
    whose responses are all known skips the reference forward.
    """
    from tqdm.auto import tqdm

    was_training = model.training
    model.eval()
    active = getattr(model, "active_adapter", None) if hasattr(model, "peft_config") else None
    out = []
    known = known_reference or {}
    try:
        for start in tqdm(range(0, len(examples), batch_size), desc="reference + margins", disable=not progress):
            chunk = examples[start:start + batch_size]
            keys = [[(ex["row"], ex.get("prompt"), ex.get(side)) for ex in chunk] for side in ("chosen", "rejected")]
            if all(k in known for side in keys for k in side):
                ref_c, ref_r = (torch.tensor([known[k] for k in side], dtype=torch.float64) for side in keys)
            else:
                with reference_context(model):
                    ref_c, ref_r = pair_logps(model, chunk, pad_token_id)
            cols_c, cols_r = [], []
            for m in margins:
                if m.kind == "implicit":
                    model.set_adapter(m.adapter)
                    pol_c, pol_r = pair_logps(model, chunk, pad_token_id)
                    cols_c.append(implicit_rewards(pol_c, ref_c, beta))
                    cols_r.append(implicit_rewards(pol_r, ref_r, beta))
                else:
                    prompts = [ex["prompt"] for ex in chunk]
                    k = m.scale * m.sign
                    cols_c.append(torch.as_tensor(k * score(m.scorer, prompts, [ex["chosen"] for ex in chunk])))
                    cols_r.append(torch.as_tensor(k * score(m.scorer, prompts, [ex["rejected"] for ex in chunk])))
            mc = torch.stack(cols_c, 1) if cols_c else torch.zeros(len(chunk), 0)  # (B, n-1)
            mr = torch.stack(cols_r, 1) if cols_r else torch.zeros(len(chunk), 0)
            for i, ex in enumerate(chunk):
                out.append(
                    {
                        **ex,
                        "reference_chosen_logps": float(ref_c[i]),
                        "reference_rejected_logps": float(ref_r[i]),
                        "margin_chosen_rewards": [float(x) for x in mc[i]],
                        "margin_rejected_rewards": [float(x) for x in mr[i]],
                    }
                )
    finally:
        if active is not None and isinstance(active, str):
            model.set_adapter(active)
        model.train(was_training)
    return out


def margin_summary(examples: list[dict]) -> dict:
    """Mean and spread of the stored margin differences, to check the scale of explicit margins."""
    if not examples or not examples[0]["margin_chosen_rewards"]:
        return {}
    diff = np.array([np.subtract(e["margin_chosen_rewards"], e["margin_rejected_rewards"]) for e in examples])
    return {"mean_margin_diff": diff.mean(0).tolist(), "std_margin_diff": diff.std(0).tolist()}
