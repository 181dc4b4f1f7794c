"""Benchmark (issue 14): what one conditioned adapter for every weighting costs against one exact adapter.

In one run, on a family's stored target pairs (the precompute is shared: no new pass), with the family's
recipe (LoRA rank and alpha, lr, batch, steps):

  exact         train.train_adapter at one interior weighting (what every point of the family costs)
  conditioned   conditioned.train_conditioned, the same number of steps (and --conditioned-steps more)

Each is timed from a fresh base model, alternating, --repeats times; the fastest counts (noise only adds).
The family of N exact adapters costs about N x one (bench_family_cost.py: the marginal cost of a point is
one adapter's training); the conditioned adapter stands for all of them.

    python benchmarks/bench_conditioned.py --family checkpoints/demo --repeats 1
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from modpo import family as fam  # noqa: E402
from modpo.conditioned import ConditionedConfig, train_conditioned  # noqa: E402
from modpo.config import TrainConfig  # noqa: E402
from modpo.models import load_base  # noqa: E402
from modpo.train import train_adapter  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--family", default="checkpoints/demo")
    ap.add_argument("--steps", type=int, help="steps of each run (default: the family's recipe)")
    ap.add_argument("--conditioned-steps", type=int, help="steps of the conditioned run (default: --steps)")
    ap.add_argument("--repeats", type=int, default=1)
    a = ap.parse_args()
    family = fam.load_family(a.family)
    spec = family.spec
    _, pairs = fam.read_pairs(Path(a.family), spec.target)
    recipe = {k: v for k, v in fam.family_recipe(family).items() if k in TrainConfig.__dataclass_fields__}
    recipe["target_modules"] = tuple(recipe.get("target_modules", ("q_proj", "k_proj", "v_proj", "o_proj")))
    cfg = TrainConfig(**{**recipe, "beta": spec.beta, **({"max_steps": a.steps} if a.steps else {})})
    ccfg_steps = a.conditioned_steps or cfg.max_steps
    n = len(spec.objectives)
    interior = [1 / n] * n
    ccfg = ConditionedConfig(r=cfg.lora_r, alpha=cfg.lora_alpha, target_modules=cfg.target_modules, n_objectives=n)
    print(f"{a.family}: {len(pairs)} pairs, {cfg.max_steps} steps (conditioned {ccfg_steps}) of {cfg.batch_size} "
          f"pairs, LoRA r {cfg.lora_r}", flush=True)
    times = {"exact": [], "conditioned": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(a.repeats):
            model, _ = load_base(spec.base_model)
            start = time.perf_counter()
            train_adapter(model, pairs, interior, cfg, Path(tmp) / f"exact-{r}", "exact", report=lambda *x: None,
                          work_dir=Path(tmp) / "work")
            times["exact"].append(time.perf_counter() - start)
            model, _ = load_base(spec.base_model)
            start = time.perf_counter()
            train_conditioned(model, pairs, TrainConfig(**{**cfg.__dict__, "max_steps": ccfg_steps}), ccfg,
                              Path(tmp) / "work", report=lambda *x: None)
            times["conditioned"].append(time.perf_counter() - start)
            print(f"repeat {r}: exact {times['exact'][-1]:.1f} s, conditioned {times['conditioned'][-1]:.1f} s",
                  flush=True)
    exact, cond = min(times["exact"]), min(times["conditioned"])
    trained = sum(p.kind in ("modpo", "dpo-margin") for p in family.points)
    print(f"one exact adapter        {exact:8.1f} s")
    print(f"one conditioned adapter  {cond:8.1f} s   ({cond / exact:.2f}x one exact adapter)")
    print(f"the exact family         ~{trained} x one adapter ({trained} trained adapters in {a.family})")


if __name__ == "__main__":
    main()
