"""Evaluation cost, side by side in one run: log-probs from a separate policy pass (before) vs. taken
from the logits generation already computed (now, modpo.evaluate), on a family's own adapters; and the
base model's reference pass over every adapted row vs. over their distinct (prompt, answer) rows only.

    python benchmarks/bench_evaluate.py --family checkpoints/demo --prompts 16
"""
import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from modpo import family as fam  # noqa: E402
from modpo.evaluate import adapters_of  # noqa: E402
from modpo.generate import BASE, GenerationSettings, generate, response_logps  # noqa: E402
from modpo.models import attach_adapters, load_base, peft_name  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--family", default="checkpoints/demo")
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--tokens", type=int, default=64)
    a = ap.parse_args()
    f = fam.load_family(a.family)
    pts = [p for p in f.points if p.kind not in ("base", "mix")]
    model, tok = load_base(f.spec.base_model)
    model = attach_adapters(model, adapters_of(f, pts))
    prompts = fam.read_eval_prompts(Path(a.family))[:a.prompts]
    names = [BASE] * len(prompts) + [peft_name(p.id) for p in pts for _ in prompts]
    rows = prompts * (len(pts) + 1)
    s = GenerationSettings(max_new_tokens=a.tokens)
    t = time.perf_counter(); plain = generate(model, tok, rows, names, s, 64); g0 = time.perf_counter() - t  # noqa: E702
    t = time.perf_counter(); out = generate(model, tok, rows, names, s, 64, with_logps=True); g1 = time.perf_counter() - t  # noqa: E702,E501
    ids = [o["response_ids"] for o in out]
    t = time.perf_counter(); pol = response_logps(model, tok, rows, ids, names, 64); p = time.perf_counter() - t  # noqa: E702
    t = time.perf_counter()
    response_logps(model, tok, rows, ids, [BASE] * len(rows), 64)
    r_all = time.perf_counter() - t
    ad = [i for i, n in enumerate(names) if n != BASE]
    t = time.perf_counter()
    response_logps(model, tok, [rows[i] for i in ad], [ids[i] for i in ad], [BASE] * len(ad), 64)
    r_ad = time.perf_counter() - t
    distinct = list(dict.fromkeys((rows[i], tuple(ids[i])) for i in ad))  # what modpo.evaluate scores once
    t = time.perf_counter()
    response_logps(model, tok, [r for r, _ in distinct], [list(x) for _, x in distinct], [BASE] * len(distinct), 64)
    r_distinct = time.perf_counter() - t
    print(f"{len(rows)} rows: generate {g0:.1f}s, with logps {g1:.1f}s; policy pass {p:.1f}s; "
          f"reference pass all {r_all:.1f}s, adapted rows only {r_ad:.1f}s ({len(ad)} rows), their distinct "
          f"answers only {r_distinct:.1f}s ({len(distinct)} rows): {r_distinct / r_ad:.2f}x")
    print(f"before {g0 + p + r_all:.1f}s vs now {g1 + r_ad:.1f}s: {(g1 + r_ad) / (g0 + p + r_all):.2f}x")
    print("max |logp difference|", max(abs(o["logp"] - float(x)) for o, x in zip(out, pol)),
          "; same responses:", [o["response_ids"] for o in plain] == ids)


if __name__ == "__main__":
    main()
