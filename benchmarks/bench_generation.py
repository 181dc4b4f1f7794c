"""Benchmark 3 (issue 6): side-by-side generation of K adapters, three ways, in one run.

  batched      one generate call, one row per adapter, peft adapter_names=[...] (what the Compare page does)
  per-adapter  one generate call per adapter (set_adapter, then generate)
  floor        one adapter, the same batch size K (set_adapter; the cost of the batch itself)

Every row generates exactly --tokens new tokens (min_new_tokens = max_new_tokens, greedy), so the
three do the same arithmetic apart from the per-adapter LoRA routing. K may exceed the family's
adapter count: its adapters are loaded again under more names (distinct peft adapters all the same).

    python benchmarks/bench_generation.py --family checkpoints/demo --k 2 4 8
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from modpo import family as fam  # noqa: E402
from modpo.generate import GenerationSettings, generate  # noqa: E402
from modpo.models import attach_adapters, load_base  # noqa: E402


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--family", default="checkpoints/demo")
    ap.add_argument("--k", type=int, nargs="+", default=[2, 4, 8])
    ap.add_argument("--tokens", type=int, default=32, help="new tokens per row")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--prompt", default=None, help="default: the family's first held-out prompt")
    ap.add_argument("--json")
    a = ap.parse_args()
    family = fam.load_family(a.family)
    trained = [p for p in family.points if p.kind not in ("base", "mix")]
    prompt = a.prompt or (fam.read_eval_prompts(Path(a.family)) or ["Tell me about tea."])[0]
    model, tokenizer = load_base(family.spec.base_model)
    names = [f"a{i}" for i in range(max(a.k))]
    model = attach_adapters(model, {n: trained[i % len(trained)].path for i, n in enumerate(names)})
    settings = GenerationSettings(max_new_tokens=a.tokens, min_new_tokens=a.tokens)
    print(f"{family.spec.base_model}; prompt {prompt!r}; {a.tokens} new tokens per row; torch threads "
          f"{torch.get_num_threads()}; median of {a.repeats}", flush=True)
    rows = []
    for k in a.k:
        chosen = names[:k]

        def batched():
            generate(model, tokenizer, [prompt] * k, chosen, settings, batch_size=k)

        def per_adapter():
            for n in chosen:
                model.set_adapter(n)
                generate(model, tokenizer, [prompt], None, settings, batch_size=1)

        def floor():
            model.set_adapter(chosen[0])
            generate(model, tokenizer, [prompt] * k, None, settings, batch_size=k)

        r = {"k": k, "batched_s": timed(batched, a.repeats), "per_adapter_s": timed(per_adapter, a.repeats),
             "floor_s": timed(floor, a.repeats)}
        r["speedup_vs_per_adapter"] = r["per_adapter_s"] / r["batched_s"]
        r["batched_over_floor"] = r["batched_s"] / r["floor_s"]
        rows.append(r)
        print(f"K={k}: batched {r['batched_s']:.2f} s, per-adapter {r['per_adapter_s']:.2f} s, floor {r['floor_s']:.2f} s"
              f" -> {r['speedup_vs_per_adapter']:.2f}x faster than per-adapter, {r['batched_over_floor']:.2f}x the floor",
              flush=True)
    print("\ntargets at K=4: >= 3x faster than per-adapter, <= 1.3x the floor")
    if a.json:
        Path(a.json).write_text(json.dumps({"args": vars(a), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
