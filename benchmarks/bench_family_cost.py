"""Benchmark 2 (issue 6): what a family costs as it grows.

Wall time of a whole sweep (margin model by DPO, the shared precompute, the DPO endpoint, then N
MODPO weightings; no evaluation) for N = 1, 2, 4, 8, each into a fresh family, in one run. The
marginal cost of one more weighting is the least-squares slope of wall time against N; it is set
against one DPO run of the same length (the endpoint's training time in the same sweeps).
Target: marginal cost <= 1.05x one DPO run (the margin model and the precompute are paid once).

    python benchmarks/bench_family_cost.py                       # tiny model, 12 steps per adapter
    python benchmarks/bench_family_cost.py --model smollm2-135m-instruct --steps 4 --ns 1 2 4
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from modpo import family as fam  # noqa: E402
from modpo.config import TrainConfig  # noqa: E402
from modpo.data import load_jsonl  # noqa: E402
from modpo.models import load_base  # noqa: E402
from modpo.sweep import run_sweep  # noqa: E402


def grid(n: int) -> list[tuple[float, float]]:
    return [(round(w, 4), round(1 - w, 4)) for w in np.linspace(0.1, 0.9, n)] if n > 1 else [(0.5, 0.5)]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--data", default="checkpoints/demo/data/preferences.jsonl")
    ap.add_argument("--ns", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--pairs", type=int, default=96, help="rows of the data used")
    ap.add_argument("--repeats", type=int, default=2, help="sweeps per N; the fastest counts (noise only adds)")
    ap.add_argument("--json")
    a = ap.parse_args()
    dataset = load_jsonl(a.data)
    dataset.rows = dataset.rows[:a.pairs]
    target, other = dataset.objectives[:2]
    objectives = [fam.Objective(o, "maximize", o) for o in (target, other)]
    cfg = TrainConfig(lora_r=8, lora_alpha=16, learning_rate=1e-3, max_steps=a.steps, batch_size=8, max_length=256)
    print(f"model {a.model}; {len(dataset.rows)} pairs; {a.steps} steps of 8 pairs per adapter; "
          f"margin model for {other!r} by DPO", flush=True)
    rows = []
    for n in a.ns:
        best = None
        for _ in range(a.repeats):
            model, tokenizer = load_base(a.model)
            spec = fam.FamilySpec(f"cost-{n}", a.model, objectives, target, 0.1,
                                  {other: {"kind": "implicit", "adapter": f"dpo-{other}"}})
            with tempfile.TemporaryDirectory() as tmp:
                t = time.perf_counter()
                times = run_sweep(Path(tmp) / "fam", spec, model, tokenizer, dataset, grid(n), cfg, None,
                                  log=lambda m: None)
                wall = time.perf_counter() - t
            if best is None or wall < best[0]:
                best = (wall, times)
        wall, times = best
        endpoint = next(v for k, v in times.items() if k.startswith("train w-1.00"))
        interior = [v for k, v in times.items() if k.startswith("train w-") and not k.startswith("train w-1.00")]
        rows.append({"n": n, "wall_s": wall, "margin_s": times.get(f"margin {other}", 0.0),
                     "precompute_s": times["precompute"], "dpo_endpoint_s": endpoint,
                     "mean_weighting_s": statistics.mean(interior)})
        r = rows[-1]
        print(f"N={n}: sweep {wall:.1f} s (margin model {r['margin_s']:.1f} s, precompute {r['precompute_s']:.1f} s, "
              f"DPO endpoint {endpoint:.1f} s, mean MODPO weighting {r['mean_weighting_s']:.1f} s)", flush=True)
    ns = np.array([r["n"] for r in rows], dtype=float)
    walls = np.array([r["wall_s"] for r in rows])
    slope = float(np.polyfit(ns, walls, 1)[0]) if len(ns) > 1 else float("nan")
    dpo = statistics.median(r["dpo_endpoint_s"] for r in rows)
    print(f"\nmarginal cost of one more weighting {slope:.1f} s vs one DPO run {dpo:.1f} s: "
          f"{slope / dpo:.2f}x (target <= 1.05x)")
    if a.json:
        Path(a.json).write_text(json.dumps({"args": vars(a), "rows": rows, "slope_s": slope, "dpo_s": dpo}, indent=2))


if __name__ == "__main__":
    main()
