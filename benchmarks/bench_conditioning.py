"""Benchmark (issue 14): which conditioning should the one adapter for every weighting use?

Two conditionings (modpo/conditioned.py), trained in one run with the same loss (modpo_loss, one w per
pair, w = eps * e_target + (1 - eps) * Dirichlet(1)), recipe, steps and pairs (the family's stored target
pairs: no new precompute):

  svd        Panacea: w in the last n singular values of an SVD-LoRA (the default; exports exactly)
  embedding  the weighting in the input: a learned embedding E w added to every input token, with the
             same LoRA (all singular values free)

Each is evaluated at every trained weighting it covers (w_target >= eps; --grid adds the conditioned
grid) on the family's own evaluation prompts and settings, through evaluate.evaluate_points (the
pipeline every point uses), and compared with the exact adapters by front.conditioned_audit: per
objective the score difference in standard errors. Also reported: the hypervolume of each method's
points and of the exact family with one reference point over all three, the Spearman correlation of
each objective's score with its weight across the method's points (does the score follow w?), and the
training wall time.

--per-objective M ... gives the svd method M singular values per objective (Panacea: 1), each a variant.

    python benchmarks/bench_conditioning.py --family checkpoints/demo
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from modpo import family as fam  # noqa: E402
from modpo.conditioned import (  # noqa: E402
    LOSS_SCALES,
    METHODS,
    ConditionedConfig,
    grid_weightings,
    set_weighting,
    train_conditioned,
)
from modpo.config import EvalSettings, TrainConfig  # noqa: E402
from modpo.evaluate import evaluate_points  # noqa: E402
from modpo.front import EXACT_KINDS, conditioned_audit, front_table  # noqa: E402
from modpo.generate import BASE  # noqa: E402
from modpo.models import load_base  # noqa: E402
from modpo.pareto import default_reference_point, hypervolume  # noqa: E402
from modpo.weights import target_first, weights_id  # noqa: E402


def conditioned_rows(method: str, family, cfg: TrainConfig, ccfg: ConditionedConfig, weightings, prompts,
                     settings: EvalSettings) -> tuple[list[dict], float]:
    """Train one conditioned adapter and evaluate it at each weighting: (front_table-like rows, train s)."""
    spec = family.spec
    names = spec.objective_names
    _, pairs = fam.read_pairs(family.root, spec.target)
    model, tokenizer = load_base(spec.base_model)
    with tempfile.TemporaryDirectory() as tmp:
        record = train_conditioned(model, pairs, cfg, ccfg, Path(tmp), report=lambda *x: None)
    rows = []
    for w in weightings:
        set_weighting(model, target_first(names, spec.target, w))
        pid = f"{method}-{weights_id(w)[2:]}"
        result = evaluate_points(model, tokenizer, spec, prompts, {pid: BASE}, settings)[pid]
        row = {"id": pid, "kind": "conditioned", **{f"w_{o}": x for o, x in zip(names, w)}, "evaluated": True}
        for o in names:
            row[o], row[f"{o}_stderr"] = result["objectives"][o]["mean"], result["objectives"][o]["stderr"]
        rows.append(row)
        print(f"  {pid}: " + ", ".join(f"{o} {row[o]:.3f}" for o in names), flush=True)
    return rows, record["wall_time_s"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--family", default="checkpoints/demo")
    ap.add_argument("--steps", type=int, help="training steps of each method (default: the family's recipe)")
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    ap.add_argument("--grid", action="store_true", help="also evaluate the conditioned grid (slower)")
    ap.add_argument("--eps", type=float, default=ConditionedConfig.eps)
    ap.add_argument("--seed", type=int, help="training seed (default: the family's recipe; w draws follow it)")
    ap.add_argument("--loss-scales", nargs="+", default=["none"], choices=list(LOSS_SCALES),
                    help="how each pair's loss counts (conditioned.LOSS_SCALES); each is a variant of every method")
    ap.add_argument("--per-objective", nargs="+", type=int, default=[1],
                    help="singular values per objective that carry its weight (svd); each is a variant")
    a = ap.parse_args()
    family = fam.load_family(a.family)
    spec, names = family.spec, family.spec.objective_names
    recipe = {k: v for k, v in fam.family_recipe(family).items() if k in TrainConfig.__dataclass_fields__}
    recipe["target_modules"] = tuple(recipe.get("target_modules", ("q_proj", "k_proj", "v_proj", "o_proj")))
    cfg = TrainConfig(**{**recipe, "beta": spec.beta, **({"max_steps": a.steps} if a.steps else {}),
                         **({"seed": a.seed} if a.seed is not None else {})})
    prompts = fam.read_eval_prompts(family.root)
    settings = EvalSettings.from_recorded(fam.recorded_eval_settings(family))
    table = front_table(family)
    exact = table[table["kind"].isin(EXACT_KINDS) & table["evaluated"].astype(bool)]
    trained = exact[[f"w_{o}" for o in names]].to_numpy(float).tolist()
    t = names.index(spec.target)
    weightings = (grid_weightings(names, spec.target, a.eps, trained) if a.grid else
                  [w for w in trained if w[t] >= a.eps - 1e-9])
    print(f"{a.family}: {len(exact)} exact adapters, {cfg.max_steps} steps of {cfg.batch_size} pairs, "
          f"LoRA r {cfg.lora_r}, seed {cfg.seed}; each method at {len(weightings)} weightings on {len(prompts)} "
          "prompts", flush=True)
    results, maximize = {}, [o.maximize for o in spec.objectives]
    for method in a.methods:
        for scale in a.loss_scales:
            for m in a.per_objective if method == "svd" else [1]:
                name = method + ("" if scale == "none" else f"+{scale}") + ("" if m == 1 else f"+m{m}")
                print(f"[{name}] {METHODS[method]}, loss {LOSS_SCALES[scale]}, {m} per objective", flush=True)
                ccfg = ConditionedConfig(r=cfg.lora_r, alpha=cfg.lora_alpha, target_modules=cfg.target_modules,
                                         n_objectives=len(names), per_objective=m, eps=a.eps, method=method,
                                         loss_scale=scale)
                start = time.perf_counter()
                rows, train_s = conditioned_rows(name, family, cfg, ccfg, weightings, prompts, settings)
                results[name] = (pd.DataFrame(rows), train_s, time.perf_counter() - start - train_s)
    every = np.vstack([exact[names].to_numpy(float), *[r[0][names].to_numpy(float) for r in results.values()]])
    reference = default_reference_point(every, maximize)
    hv_exact = hypervolume(exact[names].to_numpy(float), reference, maximize)
    print(f"\nreference point {np.round(reference, 4).tolist()}; exact family hypervolume {hv_exact:.6g} "
          f"({len(exact)} points)")
    header = ["method", "train s", "eval s", "HV / exact", *[f"|{o}| se" for o in names], "within 2 se",
              *[f"rho {o}" for o in names]]
    print(" | ".join(header))
    for method, (rows, train_s, eval_s) in results.items():
        audit, _ = conditioned_audit(family, pd.concat([exact, rows.assign(on_front=False)], ignore_index=True))
        apart = audit.loc[audit["conditioned"] != "not covered", [f"{o}_se_apart" for o in names]].abs()
        hv = hypervolume(rows[names].to_numpy(float), reference, maximize)
        rhos = [spearmanr(rows[f"w_{o}"], rows[o])[0] for o in names]
        print(" | ".join([method, f"{train_s:.0f}", f"{eval_s:.0f}", f"{hv / hv_exact:.2f}",
                          *[f"{apart[c].mean():.2f}" for c in apart], f"{float((apart.max(axis=1) <= 2).mean()):.0%}",
                          *[f"{r:.2f}" for r in rhos]]), flush=True)


if __name__ == "__main__":
    main()
