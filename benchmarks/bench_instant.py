"""Issue 5's measured answer: how far are merged and mixed points from the trained MODPO points?

For every trained interior weighting of a family: a merge (peft add_weighted_adapter, cat) and a
decoding-time mix (MOD) at the same w from the family's default sources (the DPO endpoint and the
margin model, or the adapter with the smallest target weight), each evaluated exactly as the trained
adapters were (same prompts, scorers, settings). Prints, per weighting, the distance to the trained
point on each objective in standard errors (|a - b| / sqrt(se_a^2 + se_b^2)) and their Euclidean
combination, and the wall time to produce each point (training vs. merge vs. mix) and to evaluate it.
Works on a copy of the family, so checkpoints/ is not written; the plot goes to --png.

    python benchmarks/bench_instant.py --family checkpoints/demo --png benchmarks/instant-demo.png
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from modpo import family as fam  # noqa: E402
from modpo.evaluate import EvalSettings  # noqa: E402
from modpo.front import front_table  # noqa: E402
from modpo.instant import default_sources, make_instant_point  # noqa: E402
from modpo.plots import front_figure, save_png  # noqa: E402


def distance(a: dict, b: dict, objectives: list[str]) -> dict:
    out = {}
    for o in objectives:
        ea, eb = a["objectives"][o], b["objectives"][o]
        out[o] = abs(ea["mean"] - eb["mean"]) / float(np.hypot(ea["stderr"], eb["stderr"]))
    out["euclid"] = float(np.sqrt(sum(out[o] ** 2 for o in objectives)))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--family", default="checkpoints/demo")
    ap.add_argument("--png", default="benchmarks/instant-demo.png")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / Path(a.family).name
        shutil.copytree(a.family, root, ignore=shutil.ignore_patterns("jobs"))
        family = fam.load_family(root)
        spec = family.spec
        names = spec.objective_names
        sources = default_sources(family)
        source_ids = {p.id for p in sources}
        trained = [p for p in family.points if p.kind == "modpo" and p.eval and p.id not in source_ids]
        settings = EvalSettings.from_recorded(trained[0].eval["settings"], batch_size=64)
        prompts = fam.read_eval_prompts(root)
        print(f"{spec.name}: {len(trained)} trained interior weightings; sources {sorted(source_ids)}; "
              f"{len(prompts)} eval prompts, {settings.max_new_tokens} new tokens", flush=True)
        model = tokenizer = None
        rows = []
        for p in sorted(trained, key=lambda p: -p.weights[spec.target]):
            w = [p.weights[o] for o in names]
            row = {"id": p.id, "weights": w, "train_s": p.meta.get("wall_time_s")}
            for method in ("merge", "mix"):
                meta, model = make_instant_point(root, w, method, prompts, settings, model=model, tokenizer=tokenizer,
                                                 log=lambda m: None)
                if tokenizer is None:
                    from modpo.models import load_tokenizer
                    tokenizer = load_tokenizer(spec.base_model)
                point = fam.load_family(root).point(meta["id"])
                row[method] = {"id": meta["id"], "produce_s": meta["wall_time_s"], "eval_s": meta["eval_wall_time_s"],
                               "distance_se": distance(point.eval, p.eval, names),
                               "scores": {o: point.eval["objectives"][o]["mean"] for o in names},
                               "mean_tokens": point.eval["mean_response_tokens"]}
            row["trained_scores"] = {o: p.eval["objectives"][o]["mean"] for o in names}
            row["trained_tokens"] = p.eval["mean_response_tokens"]
            rows.append(row)
            print(f"{p.id}: trained {row['trained_scores']} | merge {row['merge']['scores']} "
                  f"({row['merge']['distance_se']['euclid']:.1f} se) | mix {row['mix']['scores']} "
                  f"({row['mix']['distance_se']['euclid']:.1f} se) | mean tokens trained / merge / mix "
              f"{row['trained_tokens']:.1f} / {row['merge']['mean_tokens']:.1f} / {row['mix']['mean_tokens']:.1f}",
              flush=True)
        table = front_table(fam.load_family(root))
        maximize = {o.name: o.maximize for o in spec.objectives}
        fig = front_figure(table, names, maximize, names[1], names[0],
                           title=f"{spec.name}: trained MODPO vs merged and mixed points at the same weightings")
        save_png(fig, a.png)
    print("\n| w (" + ", ".join(names) + ") | " + " | ".join(
        f"{m} Δ{o} (se)" for m in ("merge", "mix") for o in names) + " | merge dist (se) | mix dist (se) | "
        "train (s) | merge (s) | mix (s) | eval merge / mix (s) |")
    print("|" + "---|" * (1 + 4 + 2 + 4))
    for r in rows:
        cells = [f"{r[m]['distance_se'][o]:.1f}" for m in ("merge", "mix") for o in names]
        print(f"| {', '.join(f'{x:.2f}' for x in r['weights'])} | " + " | ".join(cells)
              + f" | {r['merge']['distance_se']['euclid']:.1f} | {r['mix']['distance_se']['euclid']:.1f} | "
              f"{r['train_s']:.0f} | {r['merge']['produce_s']:.1f} | {r['mix']['produce_s']:.1f} | "
              f"{r['merge']['eval_s']:.0f} / {r['mix']['eval_s']:.0f} |")
    print(f"\nplot: {a.png}")
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
