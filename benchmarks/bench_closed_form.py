"""How far is each trained point from the optimum it aims at? The closed form against the measured scores.

A family whose labels are Bradley-Terry draws of known rewards (the demo: `labels` in family.json) has a
known optimum for every weighting, pi* ∝ pi_ref * exp(w . r / beta). feedback.closed_form_means estimates
each objective's mean under it from the family's sampled train answers (self-normalized importance
weights over each prompt's 2-4 answers). For every exact point (the vertices and the MODPO weightings)
this prints that estimate's gain over the plain mean of the same answers beside the point's measured gain
over the base model (greedy, on the held-out prompts), their ratio ("share of the way"), and each
objective's Spearman correlation of score with weight at the optimum and as measured.

The two gains are measured on different answers (sampled train answers at temperature 0.7 against greedy
held-out ones), so the share is a rough scale, not an exact fraction.

    python benchmarks/bench_closed_form.py --family checkpoints/demo
    python benchmarks/bench_closed_form.py --family /tmp/copy --only 'w-*' 'mix-*'   # points by id pattern
"""
from __future__ import annotations

import argparse
import fnmatch
import sys
from pathlib import Path

from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from modpo import family as fam  # noqa: E402
from modpo.data import load_jsonl  # noqa: E402
from modpo.feedback import closed_form_means  # noqa: E402
from modpo.front import front_table  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--family", required=True)
    ap.add_argument("--only", nargs="*", metavar="PATTERN", help="point ids to include (fnmatch patterns)")
    a = ap.parse_args(argv)
    root = Path(a.family)
    family = fam.load_family(root)
    spec = family.spec
    if spec.labels.get("kind") != "bradley-terry":
        raise SystemExit(f"{root}: its labels are not Bradley-Terry draws of a known reward, so its optimum is "
                         "not known in closed form")
    scales = spec.labels["reward_scales"]
    names = spec.objective_names
    data = load_jsonl(fam.preferences_file(root))
    start = closed_form_means(data, scales, {o: 1.0 / len(names) for o in names}, float("inf"))  # no tilt
    table = front_table(family)
    base = table[table.kind == "base"].iloc[0]
    points = table[table.kind.isin(["modpo", "dpo"]) & table.evaluated]
    if a.only:
        points = points[[any(fnmatch.fnmatch(i, p) for p in a.only) for i in points.id]]
    print(f"{root}: {len(points)} points; gains over the base model (measured) and over the answers' plain mean "
          "(optimum)\n")
    header = f"{'point':<28}" + "".join(f"{o[:10] + ' meas/opt/share':>32}" for o in names)
    print(header)
    optimum = {}
    for _, p in points.iterrows():
        w = {o: float(p[f"w_{o}"]) for o in names}
        optimum[p.id] = closed_form_means(data, scales, w, spec.beta)
        cells = []
        for o in names:
            measured, aimed = p[o] - base[o], optimum[p.id][o] - start[o]
            cells.append(f"{measured:>+10.3f} {aimed:>+9.3f} {measured / aimed if aimed else float('nan'):>9.2f}")
        print(f"{p.id:<28}" + "".join(f"{c:>32}" for c in cells))
    print()
    for o in names:
        weights = points[f"w_{o}"].to_numpy(float)
        print(f"{o}: Spearman of score with weight, measured {spearmanr(weights, points[o])[0]:.2f}, "
              f"at the optimum {spearmanr(weights, [optimum[i][o] for i in points.id])[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
