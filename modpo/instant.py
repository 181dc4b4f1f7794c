"""Instant weightings: reach a new w from adapters a family already has, in seconds, without training.

  merge  ("rewarded soups") a new LoRA adapter from source adapters through peft
         add_weighted_adapter; combination "cat" is the exact weighted sum of their LoRA deltas,
         sum_i lambda_i * B_i A_i * scale_i ("linear" is not exact).
  mix    ("MOD", Shi et al. 2024) decoding-time mixing: the next-token log-probs are
         sum_i lambda_i * log pi_i(. | x, y_<t), renormalised; all K source policies run in one
         forward over K copies of each prompt (peft adapter_names).

The source coefficients lambda solve w = sum_i lambda_i w_i (a convex combination of the sources'
weightings), so a merged or mixed point sits at the same w as a trained one and the two compare.
Both are evaluated exactly as trained adapters are (same prompts, scorers, settings).
"""
from __future__ import annotations

import numpy as np
import torch

from .data import prompt_ids
from .generate import GenerationSettings, _left_pad

COMBINATIONS = ("cat", "linear", "svd")


def source_weights(point, objective_names: list[str], margins: dict) -> list[float]:
    """A source adapter's weighting in family order (a DPO margin model is the one-hot of its objective)."""
    if point.weights:
        return [float(point.weights[o]) for o in objective_names]
    if point.kind == "dpo-margin":
        objective = point.meta.get("objective")
        return [1.0 if o == objective else 0.0 for o in objective_names]
    raise ValueError(f"adapter {point.id!r} ({point.kind}) has no weighting; it cannot be a merge or mix source")


def convex_coefficients(weights, sources: list[list[float]], tol: float = 1e-6) -> list[float]:
    """lambda >= 0, sum 1, with sum_i lambda_i sources[i] = weights; ValueError if w is outside their hull."""
    from scipy.optimize import nnls

    w = np.asarray(weights, dtype=float)
    s = np.asarray(sources, dtype=float)  # (K, n)
    if s.ndim != 2 or s.shape[1] != len(w):
        raise ValueError(f"each source weighting needs {len(w)} entries, got shape {s.shape}")
    # append the sum-to-one row, weighted heavily, and solve non-negative least squares
    a = np.vstack([s.T, 1e3 * np.ones(len(s))])
    b = np.concatenate([w, [1e3]])
    lam, _ = nnls(a, b)
    if np.abs(s.T @ lam - w).max() > tol or abs(lam.sum() - 1) > tol:
        raise ValueError(f"weights {w.tolist()} are not a convex combination of the sources' weightings "
                         f"{s.tolist()}; choose sources whose weightings surround it")
    return [float(x) for x in lam]


def merge_adapters(model, adapter_names: list[str], coefficients: list[float], new_name: str,
                   combination_type: str = "cat"):
    """Add adapter new_name = the weighted combination of adapter_names to a PeftModel (in place)."""
    if combination_type not in COMBINATIONS:
        raise ValueError(f"combination_type must be one of {COMBINATIONS}, got {combination_type!r}")
    if new_name in model.peft_config:
        # peft silently does nothing when the name exists; never let a stale adapter pass as the merge
        model.delete_adapter(new_name)
    missing = [a for a in adapter_names if a not in model.peft_config]
    if missing:
        raise ValueError(f"adapters {missing} are not loaded in the model")
    model.add_weighted_adapter(adapter_names, coefficients, new_name, combination_type=combination_type)
    return model


@torch.no_grad()
def mix_generate(model, tokenizer, prompts: list[str], adapter_names: list[str], coefficients: list[float],
                 settings: GenerationSettings = GenerationSettings()) -> list[dict]:
    """Decode from softmax(sum_i c_i log pi_i(. | x, y_<t)) for each prompt.

    One forward per step over K copies of the batch (row b*K + i runs adapter i on prompt b), with a
    KV cache. Returns [{"text", "response_ids", "mixed_logp"}]; mixed_logp is the summed log-prob of
    the response under the mixed policy.
    """
    k = len(adapter_names)
    if k == 0 or len(coefficients) != k:
        raise ValueError(f"give one coefficient per adapter: {len(adapter_names)} adapters, {len(coefficients)} coefficients")
    coef = torch.tensor(coefficients, dtype=torch.float32)
    if (coef < 0).any() or abs(float(coef.sum()) - 1) > 1e-6:
        raise ValueError(f"mixing coefficients must be >= 0 and sum to 1, got {coefficients}")
    model.eval()
    device = next(model.parameters()).device
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    generator = torch.Generator().manual_seed(settings.seed)
    ids, mask = _left_pad([prompt_ids(tokenizer, p) for p in prompts], pad)  # (B, T)
    b = ids.shape[0]
    ids, mask = ids.repeat_interleave(k, 0).to(device), mask.repeat_interleave(k, 0).to(device)  # (B*K, T)
    names = adapter_names * b
    past, step_ids = None, ids
    out_tokens = torch.full((b, settings.max_new_tokens), pad, dtype=torch.long)
    logps = torch.zeros(b)
    done = torch.zeros(b, dtype=torch.bool)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    for t in range(settings.max_new_tokens):
        out = model(input_ids=step_ids, attention_mask=mask, past_key_values=past, use_cache=True,
                    position_ids=positions[:, -step_ids.shape[1]:], adapter_names=names)
        past = out.past_key_values
        token_logps = out.logits[:, -1, :].float().log_softmax(-1).cpu().view(b, k, -1)  # (B, K, V)
        mixed = (coef[None, :, None] * token_logps).sum(1).log_softmax(-1)  # (B, V)
        if settings.temperature > 0:
            probs = (mixed / settings.temperature).softmax(-1)
            next_tokens = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
        else:
            next_tokens = mixed.argmax(-1)
        next_tokens = torch.where(done, torch.full_like(next_tokens, pad), next_tokens)
        logps += torch.where(done, 0.0, mixed.gather(1, next_tokens[:, None]).squeeze(1))
        out_tokens[:, t] = next_tokens
        done |= next_tokens == eos
        if done.all():
            break
        step_ids = next_tokens.repeat_interleave(k).to(device)[:, None]
        mask = torch.cat([mask, torch.ones((mask.shape[0], 1), dtype=mask.dtype, device=device)], 1)
        positions = torch.cat([positions, positions[:, -1:] + 1], 1)
    results = []
    for i in range(b):
        row = out_tokens[i].tolist()
        row = row[:row.index(eos) + 1] if eos in row else [x for x in row[:t + 1]]
        results.append({"text": tokenizer.decode(row, skip_special_tokens=True).strip(), "response_ids": row,
                        "mixed_logp": float(logps[i])})
    return results


# ---- family level: make, evaluate and save a merged or mixed point ------------------------------------

def default_sources(family) -> list:
    """The family's single-objective ends: the DPO endpoint plus the margin models, or, with explicit
    margins (no margin model), the trained adapter with the smallest target weight."""
    spec = family.spec
    trained = [p for p in family.points if p.kind in ("modpo", "dpo-margin")]
    endpoint = [p for p in trained if p.weights and p.weights.get(spec.target) == 1.0]
    margin_models = [p for p in trained if p.kind == "dpo-margin"]
    if margin_models:
        return endpoint + margin_models
    others = sorted((p for p in trained if p.weights and p.weights.get(spec.target, 1) < 1),
                    key=lambda p: p.weights[spec.target])
    return endpoint + others[:1]


def make_instant_point(root, weights, method: str, prompts: list[str], settings, sources: list[str] | None = None,
                       combination_type: str = "cat", model=None, tokenizer=None, log=print) -> tuple[dict, object]:
    """Build, evaluate and save a merge or mix point at weights (family order).

    Returns (its meta, the model): pass the model back in to reuse it (it now holds the sources).
    """
    import shutil
    import time
    from pathlib import Path

    from . import family as fam
    from .evaluate import build_record, evaluate_points
    from .generate import BASE, response_logps
    from .models import attach_adapters, check_tokenizer, load_base, peft_name
    from .sweep import versions
    from .train import _flatten_adapter_dir
    from .weights import weights_id

    if method not in ("merge", "mix"):
        raise ValueError(f"method must be 'merge' or 'mix', got {method!r}")
    root = Path(root)
    family = fam.load_family(root)
    spec = family.spec
    w = [float(x) for x in weights]
    if len(w) != len(spec.objectives) or any(not np.isfinite(x) or x < 0 for x in w) or abs(sum(w) - 1) > 1e-6:
        raise ValueError(f"weights must be {len(spec.objectives)} numbers >= 0 summing to 1 "
                         f"(objectives {spec.objective_names}), got {weights}")
    src = [family.point(i) for i in sources] if sources else default_sources(family)
    if len(src) < 2:
        raise ValueError("a merge or mix needs at least two source adapters with different weightings")
    for p in src:
        if p.meta.get("base_model", spec.base_model) != spec.base_model:
            raise ValueError(f"source {p.id!r} was trained on {p.meta.get('base_model')!r}, not the family's "
                             f"{spec.base_model!r}")
    coefficients = convex_coefficients(w, [source_weights(p, spec.objective_names, spec.margins) for p in src])
    reason = fam.incomparable(family, prompts, settings)
    if reason:  # a preview is drawn beside the trained points: it must be measured like them
        raise ValueError(f"{root}: refused: {reason}")
    point_id = f"{method}-{weights_id(w)[2:]}"
    if model is None:
        model, tokenizer = load_base(spec.base_model)
    check_tokenizer(tokenizer, spec.notes.get("tokenizer"), f"family {spec.name!r}")
    names = [peft_name(p.id) for p in src]
    model = attach_adapters(model, {peft_name(p.id): p.path for p in src})
    job = fam.job_dir(root, point_id)
    fam.remove_partial(root, point_id)
    out = job / "adapter"
    out.mkdir(parents=True, exist_ok=True)
    recipe = {"sources": [p.id for p in src], "coefficients": coefficients}
    t = time.perf_counter()
    if method == "merge":
        merge_adapters(model, names, coefficients, peft_name(point_id), combination_type)
        model.save_pretrained(str(out), selected_adapters=[peft_name(point_id)], safe_serialization=True)
        _flatten_adapter_dir(out, peft_name(point_id))
        produce = time.perf_counter() - t
        record = evaluate_points(model, tokenizer, spec, prompts, {point_id: peft_name(point_id)}, settings)[point_id]
        model.delete_adapter(peft_name(point_id))
        recipe["combination_type"] = combination_type
    else:
        produce = 0.0  # nothing to build: the cost is paid at decoding time
        outputs = []
        for i in range(0, len(prompts), settings.batch_size):
            outputs += mix_generate(model, tokenizer, prompts[i:i + settings.batch_size], names, coefficients,
                                    settings.generation())
        ids = [o["response_ids"] for o in outputs]
        reference = response_logps(model, tokenizer, prompts, ids, [BASE] * len(prompts), settings.batch_size)
        log_ratios = np.array([o["mixed_logp"] for o in outputs]) - reference.numpy()
        record = build_record(spec, point_id, prompts, [o["text"] for o in outputs], ids, log_ratios, settings,
                              time.perf_counter() - t)
    meta = {"id": point_id, "kind": method, "base_model": spec.base_model,
            "weights": dict(zip(spec.objective_names, w)), "recipe": recipe, "wall_time_s": round(produce, 3),
            "eval_wall_time_s": record["wall_time_s"], "versions": versions()}
    fam.write_meta(out, meta)
    fam.write_eval(out, record)
    if fam.adapter_dir(root, point_id).exists():
        shutil.rmtree(fam.adapter_dir(root, point_id))  # a preview is recomputed, never stale
    fam.publish_adapter(root, point_id, point_id)
    shutil.rmtree(job, ignore_errors=True)
    log(f"[{method}] {point_id} from {recipe['sources']} with coefficients {np.round(coefficients, 4).tolist()}")
    return meta, model
