"""A demo recipe measured against the shipped family, before anyone spends a full rebuild on it.

Builds a reduced demo family the demo's own way (modpo.demo.build_demo with its experiment keywords:
sample from the base model, pair per objective, draw Bradley-Terry labels, train the grid, evaluate on the
288 held-out prompts, run the coherence check; no conditioned adapter), then prints per point its scores,
its gain over the base model in standard errors, its KL estimate and coherence, beside the shipped point
with the same weighting. Training noise is large at the demo's recipe: the shipped sentiment vertex gains
+4.4, +1.2 and +2.9 standard errors over the base model at training seeds 0, 1 and 2 (README, "What
mattered"), so compare recipes over several --seeds: each seed after the first trains the same pairs into
<out>-seed<N> (its data copied, no new sampling), and the last table gives each point's mean gain.

    # 8 samples per prompt, relevance pairs within 5 words of each other (about 35 minutes on the 2-core
    # Xeon for one seed: sampling 9, reference pass 4, 5 adapters 16, evaluation and coherence 5)
    python benchmarks/bench_demo_recipe.py --out /tmp/recipe --samples-per-prompt 8 --match-relevance-words 5
    python benchmarks/bench_demo_recipe.py --out /tmp/recipe --seeds 0 1 2 --grid '[[0, 1, 0]]'

Each family is resumable like the demo: a second run reuses its pairs and adapters.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from modpo import demo  # noqa: E402
from modpo import family as fam  # noqa: E402
from modpo.data import load_jsonl  # noqa: E402
from modpo.front import front_table  # noqa: E402

# the relevance end (always trained), the other two vertices and two interior points that lean apart
DEFAULT_GRID = [(0.0, 1.0, 0.0), (0.0, 0.0, 1.0), (0.2, 0.6, 0.2), (0.5, 0.0, 0.5)]


def scores(root: Path) -> dict:
    """point id -> {objective: (mean, stderr)}, kl, coherence (relevance x base, bad share) where recorded."""
    family = fam.load_family(root)
    table = front_table(family).set_index("id")
    coherence = family.spec.notes.get("coherence", {}).get("points", {})
    out = {}
    for pid, row in table.iterrows():
        out[pid] = {"objectives": {o: (row[o], row[f"{o}_stderr"]) for o in family.spec.objective_names},
                    "kl": row["kl"], "coherence": coherence.get(pid)}
    return out


def gain(point: dict, base: dict, objective: str) -> float:
    (m, s), (mb, sb) = point["objectives"][objective], base["objectives"][objective]
    return (m - mb) / float(np.hypot(s, sb))


def describe(point: dict, base: dict) -> str:
    parts = [f"{o} {m:7.3f} ({gain(point, base, o):+.1f} se)" for o, (m, _) in point["objectives"].items()]
    c = point["coherence"]
    tail = f"  coherence {c['relevance_vs_base']:.2f} x, bad {c['bad']:.0%}" if c else ""
    return "  ".join(parts) + f"  KL {point['kl']:5.2f}" + tail


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="folder for the experiment family (resumable)")
    ap.add_argument("--samples-per-prompt", type=int, default=demo.SAMPLES_PER_PROMPT)
    ap.add_argument("--match-relevance-words", type=float, default=None,
                    help="choose relevance pairs among answers at most this many words apart")
    ap.add_argument("--grid", type=json.loads, default=DEFAULT_GRID,
                    help="JSON list of weightings (relevance, sentiment, brevity); the relevance end is always trained")
    ap.add_argument("--steps", type=int, default=None, help="optimizer steps per adapter (default: the demo's)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds (default 0, the demo's)")
    ap.add_argument("--tokens", type=int, default=None, help="response cap, sampled and evaluated alike (default: "
                    "the demo's); the shipped family's rows are then measured at its own cap")
    ap.add_argument("--trim-rule", type=int, choices=[1, 2], default=None, help="how a capped answer is trimmed, "
                    "sampled and evaluated alike (config.TRIM_RULES; default: the demo's)")
    ap.add_argument("--no-repeat-ngram", type=int, default=None, help="no token n-gram twice in an answer when "
                    "sampling the pairs, and when evaluating if it bans anything (GenerationSettings.no_repeat_ngram; "
                    "default: the demo's, 0 = off)")
    ap.add_argument("--eval-no-repeat-ngram", type=int, default=None, help="the same rule when the points answer "
                    "(default: --no-repeat-ngram if it bans anything, else the demo's, demo.DEMO_EVAL_NO_REPEAT_NGRAM)")
    ap.add_argument("--compare", type=Path, default=Path("checkpoints/demo"), help="the family to compare with")
    a = ap.parse_args(argv)
    if a.out.resolve() == a.compare.resolve():
        raise SystemExit("--out must not be the family it is compared with")
    matched = {"relevance": ("brevity", a.match_relevance_words)} if a.match_relevance_words is not None else None
    outs = {seed: a.out if n == 0 else a.out.with_name(f"{a.out.name}-seed{seed}") for n, seed in enumerate(a.seeds)}
    for seed, out in outs.items():
        if out != a.out and not out.exists():  # the same pairs and reference pass: only the seed differs
            out.mkdir(parents=True)
            shutil.copytree(a.out / "data", out / "data")
        try:
            demo.build_demo(out, a.steps, grid=[tuple(w) for w in a.grid], samples_per_prompt=a.samples_per_prompt,
                            matched=matched, conditioned=False, seed=seed, tokens=a.tokens,
                            trim_rule=a.trim_rule, no_repeat_ngram=a.no_repeat_ngram,
                            eval_no_repeat_ngram=a.eval_no_repeat_ngram)
        except ValueError as e:  # a resumed folder built with another recipe
            raise SystemExit(f"{out}: {e}") from None

    rows = load_jsonl(fam.preferences_file(a.out)).rows
    d_rel, d_sent, d_brevity = (np.array([r.scores[o][0] - r.scores[o][1] for r in rows])
                                for o in ("relevance", "sentiment", "brevity"))
    d_words = -d_brevity  # brevity = minus the word count
    print(f"\n{len(rows)} pairs: corr(relevance difference, word difference) {np.corrcoef(d_rel, d_words)[0, 1]:.2f}; "
          f"mean |difference|: relevance {np.abs(d_rel).mean():.3f}, sentiment {np.abs(d_sent).mean():.3f}, "
          f"words {np.abs(d_words).mean():.1f}")
    old = scores(a.compare) if fam.is_family(a.compare) else {}
    runs = {seed: scores(out) for seed, out in outs.items()}
    for seed, new in runs.items():
        print(f"\nseed {seed} ({outs[seed]})\nbase          {describe(new['base'], new['base'])}")
        for pid in sorted(p for p in new if p != "base"):
            print(f"{pid:18s} recipe  {describe(new[pid], new['base'])}")
            if pid in old:
                print(f"{'':18s} shipped {describe(old[pid], old['base'])}")
    if len(runs) > 1:
        print(f"\nmean gain over the base model across seeds {a.seeds} (standard errors; sd across seeds)")
        in_every_run = set.intersection(*(set(r) for r in runs.values())) - {"base"}
        for pid in sorted(in_every_run):
            gains = {o: [gain(r[pid], r["base"], o) for r in runs.values()]
                     for o in runs[a.seeds[0]][pid]["objectives"]}
            print(f"{pid:18s} " + "  ".join(f"{o} {np.mean(g):+.1f} ({np.std(g, ddof=1):.1f})"
                                             for o, g in gains.items()))


if __name__ == "__main__":
    main()
