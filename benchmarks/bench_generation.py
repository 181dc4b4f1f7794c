"""Benchmark 3 (issue 6): side-by-side generation of K adapters, four ways, in one run.

  batched      one generate call, one row per adapter (what the Compare page does): each LoRA layer runs
               every row's adapter in two matrix products (modpo/routing.py)
  peft         the same call through peft's own adapter_names=[...] routing (a sub-batch per adapter in
               every LoRA layer), as generate did before routing.py
  per-adapter  one generate call per adapter (set_adapter, then generate)
  floor        one adapter, the same batch size K (set_adapter; the cost of the batch itself)

Every row generates exactly --tokens new tokens (min_new_tokens = max_new_tokens, greedy), so the
four do the same arithmetic apart from the per-adapter LoRA routing. K may exceed the family's
adapter count: its adapters are loaded again under more names (distinct peft adapters all the same).

    python benchmarks/bench_generation.py --family checkpoints/demo --k 2 4 8

Without a family: a seeded random-weight Llama of realistic shape (benchmarks/random_model.py,
SmolLM2's tokenizer, nothing downloaded) with K freshly initialised LoRA adapters (r 16, alpha 32 on
q, k, v, o like the demo family; random A and B, so each changes the output), e.g. on a GPU in bf16:

    python benchmarks/bench_generation.py --random-config 1b --dtype bfloat16 --tokens 64 --k 2 4 8
    python benchmarks/bench_generation.py --random-config tiny --tokens 8 --k 2 --repeats 1   # CPU check

Tokens per second count every generated token of the call (K rows x --tokens).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # random_model

from modpo import family as fam  # noqa: E402
from modpo.data import prompt_ids  # noqa: E402
from modpo.evaluate import adapter_folder  # noqa: E402
from modpo.generate import GenerationSettings, generate  # noqa: E402
from modpo.models import attach_adapters, load_base  # noqa: E402

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def timed(fn, repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()  # generate returns token lists, i.e. it has synchronised
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--family", default="checkpoints/demo")
    ap.add_argument("--k", type=int, nargs="+", default=[2, 4, 8])
    ap.add_argument("--tokens", type=int, default=32, help="new tokens per row")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1, help="untimed calls before each timed measurement")
    ap.add_argument("--warmup-first-k-only", action="store_true",
                    help="warm up each way before the first K only (a GPU stays warm; saves device time)")
    ap.add_argument("--prompt", default=None, help="default: the family's first held-out prompt")
    ap.add_argument("--random-config", choices=["tiny", "1b"], default=None,
                    help="a seeded random-weight Llama of this shape with random LoRA adapters instead of --family")
    ap.add_argument("--tokenizer", default="smollm2-135m-instruct",
                    help="tokenizer of the random model: a short name or a folder holding SmolLM2's tokenizer")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtype", default="float32", choices=sorted(DTYPES), help="weight dtype of the base model")
    ap.add_argument("--json")
    a = ap.parse_args()
    names = [f"a{i}" for i in range(max(a.k))]
    shape, tmp = None, None
    if a.random_config:
        from random_model import describe, random_lora_adapters, random_model_folder
        base_name = random_model_folder(a.random_config, a.tokenizer, a.dtype)
        shape = describe(base_name)
        tmp = tempfile.TemporaryDirectory()
        adapter_paths = random_lora_adapters(base_name, names, Path(tmp.name))
        prompt = a.prompt or "Tell me about tea."
    else:
        family = fam.load_family(a.family)
        trained = [p for p in family.points if p.kind not in ("base", "mix")]
        prompt = a.prompt or (fam.read_eval_prompts(Path(a.family)) or ["Tell me about tea."])[0]
        base_name = family.spec.base_model
        # adapter_folder: a conditioned point stores no weights; its exact export is loaded instead
        adapter_paths = {n: adapter_folder(family, trained[i % len(trained)]) for i, n in enumerate(names)}
    model, tokenizer = load_base(base_name, dtype=DTYPES[a.dtype])
    model = model.to(a.device)
    model = attach_adapters(model, adapter_paths)
    settings = GenerationSettings(max_new_tokens=a.tokens, min_new_tokens=a.tokens)
    env = {"device": torch.cuda.get_device_name() if a.device.startswith("cuda") else "cpu",
           "torch": torch.__version__, "torch_threads": torch.get_num_threads()}
    for pkg in ("transformers", "peft"):
        env[pkg] = __import__(pkg).__version__
    adapter_dtype = next(p.dtype for n, p in model.named_parameters() if "lora_A" in n)
    print(f"{base_name} {shape or ''}; weights {a.dtype} (LoRA weights {adapter_dtype}); prompt {prompt!r} "
          f"({len(prompt_ids(tokenizer, prompt))} tokens); "
          f"{a.tokens} new tokens per row; median of {a.repeats} after {a.warmup} warm-up"
          f"{' (first K only)' if a.warmup_first_k_only else ''}; {env}", flush=True)
    rows = []

    def save():
        if a.json:
            Path(a.json).write_text(json.dumps({"args": vars(a), "shape": shape, "env": env, "prompt": prompt,
                                                "adapter_dtype": str(adapter_dtype), "rows": rows}, indent=2))

    for i_k, k in enumerate(a.k):
        chosen = names[:k]
        warmup = 0 if (a.warmup_first_k_only and i_k > 0) else a.warmup

        def batched(k=k, chosen=chosen):
            generate(model, tokenizer, [prompt] * k, chosen, settings, batch_size=k)

        def via_peft(k=k, chosen=chosen):
            with mock.patch("modpo.generate.routable", lambda model, names: False):  # peft's adapter_names
                generate(model, tokenizer, [prompt] * k, chosen, settings, batch_size=k)

        def per_adapter(chosen=chosen):
            for n in chosen:
                model.set_adapter(n)
                generate(model, tokenizer, [prompt], None, settings, batch_size=1)

        def floor(k=k, chosen=chosen):
            model.set_adapter(chosen[0])
            generate(model, tokenizer, [prompt] * k, None, settings, batch_size=k)

        r = {"k": k, "batched_s": timed(batched, a.repeats, warmup), "peft_s": timed(via_peft, a.repeats, warmup),
             "per_adapter_s": timed(per_adapter, a.repeats, warmup), "floor_s": timed(floor, a.repeats, warmup)}
        r["speedup_vs_per_adapter"] = r["per_adapter_s"] / r["batched_s"]
        r["batched_over_floor"] = r["batched_s"] / r["floor_s"]
        r["peft_over_floor"] = r["peft_s"] / r["floor_s"]
        for way in ("batched", "peft", "per_adapter", "floor"):
            r[f"{way}_tok_s"] = k * a.tokens / r[f"{way}_s"]
        rows.append(r)
        print(f"K={k}: batched {r['batched_s']:.2f} s ({r['batched_tok_s']:.0f} tok/s), peft adapter_names "
              f"{r['peft_s']:.2f} s ({r['peft_tok_s']:.0f} tok/s, {r['peft_over_floor']:.2f}x the floor), per-adapter "
              f"{r['per_adapter_s']:.2f} s ({r['per_adapter_tok_s']:.0f} tok/s), floor {r['floor_s']:.2f} s "
              f"({r['floor_tok_s']:.0f} tok/s) -> {r['speedup_vs_per_adapter']:.2f}x faster than per-adapter, "
              f"{r['batched_over_floor']:.2f}x the floor", flush=True)
        save()
    print("\ntargets at K=4: >= 3x faster than per-adapter, <= 1.3x the floor")
    if a.device.startswith("cuda"):
        print(f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")
    save()


if __name__ == "__main__":
    main()
