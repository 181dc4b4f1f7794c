"""Instant weightings: reach a new w from adapters a family already has, without training.

  merge  ("rewarded soups") a new LoRA adapter from source adapters through peft
         add_weighted_adapter; combination "cat" is the exact weighted sum of their LoRA deltas,
         sum_i lambda_i * B_i A_i * scale_i ("linear" is not exact).
  mix    ("MOD", Shi et al. 2024) decoding-time mixing: the next-token log-probs are
         sum_i lambda_i * log pi_i(. | x, y_<t), renormalised (generate.mix_generate decodes it).

The source coefficients lambda solve w = sum_i lambda_i w_i (a convex combination of the sources'
weightings), so a merged or mixed point sits at the same w as a trained one and the two compare.
Both are evaluated through the same pipeline as trained adapters (evaluate.evaluate_points: same
prompts, scorers, settings, trimming).
"""
from __future__ import annotations

import numpy as np

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


# ---- family level: make, evaluate and save a merged or mixed point ------------------------------------

def default_sources(family) -> list:
    """The family's single-objective ends. With margin models (implicit margins): the DPO endpoint plus the
    margin models. Otherwise, for each objective, the trained adapter with the most weight on it (its vertex
    where trained), so that on two objectives any weighting between the ends, and on three or more any
    weighting inside the trained vertices' simplex, is a convex combination of the sources."""
    spec = family.spec
    trained = [p for p in family.points if p.kind in ("modpo", "dpo-margin")]
    endpoint = [p for p in trained if p.weights and p.weights.get(spec.target) == 1.0]
    margin_models = [p for p in trained if p.kind == "dpo-margin"]
    if margin_models:
        return endpoint + margin_models
    weighted = sorted((p for p in trained if p.weights), key=lambda p: p.id)
    ends = []
    for name in spec.objective_names:
        best = max(weighted, key=lambda p: p.weights.get(name, 0.0), default=None)
        if best is not None and best not in ends:
            ends.append(best)
    return ends


def make_instant_point(root, weights, method: str, prompts: list[str], settings, sources: list[str] | None = None,
                       combination_type: str = "cat", model=None, tokenizer=None, log=print,
                       on_progress=None) -> tuple[dict, object]:
    """Build, evaluate and save a merge or mix point at weights (family order).

    Returns (its meta, the model): pass the model back in to reuse it (it now holds the sources).
    """
    import shutil
    import time
    from pathlib import Path

    from . import family as fam
    from .evaluate import Mix, adapters_of, evaluate_points
    from .models import (
        attach_adapters,
        check_tokenizer,
        library_versions,
        load_base,
        peft_name,
        record_base_model,
        save_adapter,
    )
    from .weights import validate_simplex, weights_id

    if method not in ("merge", "mix"):
        raise ValueError(f"method must be 'merge' or 'mix', got {method!r}")
    root = Path(root)
    family = fam.load_family(root)
    spec = family.spec
    w = validate_simplex(weights, spec.objective_names)
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
    model = attach_adapters(model, adapters_of(family, src))
    job = fam.job_dir(root, point_id)
    fam.remove_partial(root, point_id)
    out = job / "adapter"
    out.mkdir(parents=True, exist_ok=True)
    recipe = {"sources": [p.id for p in src], "coefficients": coefficients}
    t = time.perf_counter()
    if method == "merge":
        merge_adapters(model, names, coefficients, peft_name(point_id), combination_type)
        save_adapter(model, peft_name(point_id), out)
        record_base_model(out, spec.base_model)
        recipe["combination_type"] = combination_type
        policy = peft_name(point_id)
    else:
        policy = Mix(tuple(names), tuple(coefficients))  # nothing to build: the cost is paid at decoding time
    produce = time.perf_counter() - t
    record = evaluate_points(model, tokenizer, spec, prompts, {point_id: policy}, settings, on_progress)[point_id]
    if method == "merge":
        model.delete_adapter(peft_name(point_id))
    meta = {"id": point_id, "kind": method, "base_model": spec.base_model,
            "weights": dict(zip(spec.objective_names, w)), "recipe": recipe, "wall_time_s": round(produce, 3),
            "eval_wall_time_s": record["wall_time_s"], "versions": library_versions()}
    fam.write_meta(out, meta)
    fam.write_eval(out, record)
    if fam.adapter_dir(root, point_id).exists():
        shutil.rmtree(fam.adapter_dir(root, point_id))  # a preview is recomputed, never stale
    fam.publish_adapter(root, point_id, point_id)
    shutil.rmtree(job, ignore_errors=True)
    log(f"[{method}] {point_id} from {recipe['sources']} with coefficients {np.round(coefficients, 4).tolist()}")
    return meta, model
