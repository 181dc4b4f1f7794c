"""A family as a table of points (one row per evaluated policy), with the front and hypervolume.

The CLI's `front` and the dashboard both read families through this module.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .family import Family
from .pareto import bootstrap_hypervolume_ratio, default_reference_point, hypervolume, pareto_mask


def front_table(family: Family) -> pd.DataFrame:
    """Columns: id, kind, w_<obj> per objective, <obj> and <obj>_stderr per objective, kl, steps,
    wall_time_s, evaluated, on_front. Points without eval.json have NaN scores and are never on the front."""
    names = family.spec.objective_names
    rows = []
    for p in family.points:
        row = {"id": p.id, "kind": p.kind}
        for o in names:
            row[f"w_{o}"] = (p.weights or {}).get(o, np.nan)
        for o in names:
            s = (p.eval or {}).get("objectives", {}).get(o, {})
            row[o], row[f"{o}_stderr"] = s.get("mean", np.nan), s.get("stderr", np.nan)
        row["kl"] = (p.eval or {}).get("kl", {}).get("mean", np.nan)
        row["steps"] = p.meta.get("steps")
        row["wall_time_s"] = p.meta.get("wall_time_s")
        row["evaluated"] = p.eval is not None
        rows.append(row)
    columns = ["id", "kind", *[f"w_{o}" for o in names], *[c for o in names for c in (o, f"{o}_stderr")],
               "kl", "steps", "wall_time_s", "evaluated"]
    table = pd.DataFrame(rows, columns=columns)
    table["on_front"] = False
    evaluated = table["evaluated"].to_numpy(bool)
    if evaluated.any():
        maximize = [o.maximize for o in family.spec.objectives]
        table.loc[evaluated, "on_front"] = pareto_mask(table.loc[evaluated, names].to_numpy(float), maximize)
    return table


def table_hypervolume(family: Family, table: pd.DataFrame, reference_point=None,
                      objectives: list[str] | None = None) -> tuple[float, np.ndarray]:
    """(hypervolume, reference point) of the evaluated points over the chosen objectives."""
    objectives = objectives or family.spec.objective_names
    by_name = {o.name: o for o in family.spec.objectives}
    maximize = [by_name[o].maximize for o in objectives]
    pts = table.loc[table["evaluated"].astype(bool), objectives].to_numpy(float)
    if len(pts) == 0:
        return 0.0, np.full(len(objectives), np.nan)
    ref = default_reference_point(pts, maximize) if reference_point is None else np.asarray(reference_point, float)
    return hypervolume(pts, ref, maximize), ref


EXACT_KINDS = ("modpo", "dpo-margin")


def conditioned_audit(family: Family, table: pd.DataFrame) -> tuple[pd.DataFrame, dict] | None:
    """How far the conditioned adapter is from the exact family (None without evaluated conditioned points).

    Returns (rows, summary). One row per trained weighting: per objective the conditioned adapter's score
    at that weighting minus the exact adapter's, in standard errors of the difference,
    (c - e) / sqrt(se_c^2 + se_e^2); NaN where the conditioned adapter does not cover the weighting (the
    target's weight below its training eps). summary: the hypervolume of the exact adapters and of the
    conditioned points, with one reference point (the default over both), and their ratio.
    """
    names = family.spec.objective_names
    done = table[table["evaluated"].astype(bool)]
    cond, exact = done[done["kind"] == "conditioned"], done[done["kind"].isin(EXACT_KINDS)]
    if cond.empty or exact.empty:
        return None
    rows = []
    for _, e in exact.iterrows():
        same = np.all([np.abs(cond[f"w_{o}"].to_numpy(float) - e[f"w_{o}"]) < 1e-3 for o in names], axis=0)
        row = {"exact": e["id"], **{f"w_{o}": e[f"w_{o}"] for o in names}}
        c = cond[same].iloc[0] if same.any() else None
        row["conditioned"] = c["id"] if c is not None else "not covered"
        for o in names:
            row[f"{o}_se_apart"] = (np.nan if c is None else
                                    (c[o] - e[o]) / max(np.hypot(c[f"{o}_stderr"], e[f"{o}_stderr"]), 1e-12))
        rows.append(row)
    maximize = [o.maximize for o in family.spec.objectives]
    both = np.vstack([exact[names].to_numpy(float), cond[names].to_numpy(float)])
    reference = default_reference_point(both, maximize)
    hv_exact = hypervolume(exact[names].to_numpy(float), reference, maximize)
    hv_cond = hypervolume(cond[names].to_numpy(float), reference, maximize)
    return pd.DataFrame(rows), {"hypervolume_exact": hv_exact, "hypervolume_conditioned": hv_cond,
                                "ratio": hv_cond / hv_exact if hv_exact > 0 else np.nan,
                                "reference_point": reference.tolist(), "conditioned_points": len(cond),
                                "exact_points": len(exact)}


def paired_gain(a: dict, b: dict, objective: str) -> tuple[float, float] | None:
    """(mean, standard error) of point a's score minus point b's on one objective, paired by prompt.

    a, b: eval.json records. Two points evaluated on the same prompts share each prompt's difficulty:
    the standard error of the mean per-prompt difference, sd(d) / sqrt(n), leaves it out, where
    sqrt(se_a^2 + se_b^2) counts it in. None unless both records hold a score for every prompt they
    were evaluated on (samples_saved >= n), the same prompts in the same order, at least two.
    """
    scores = per_prompt_scores([a, b], [objective])
    if scores is None:
        return None
    d = scores[0, :, 0] - scores[1, :, 0]
    return float(d.mean()), float(d.std(ddof=1) / np.sqrt(len(d)))


def per_prompt_scores(records: list[dict], objectives: list[str]) -> np.ndarray | None:
    """(len(records), n_prompts, len(objectives)) scores per prompt from eval.json records, or None unless
    every record saved a finite score for every prompt it was evaluated on (samples_saved >= n), all on the
    same prompts in the same order, at least two."""
    prompts, scores = None, []
    for record in records:
        samples = record.get("samples") or []
        if len(samples) < 2 or len(samples) != record.get("prompt_set", {}).get("n"):
            return None
        if prompts is not None and [s["prompt"] for s in samples] != prompts:
            return None
        prompts = [s["prompt"] for s in samples]
        scores.append([[s["scores"].get(o, np.nan) for o in objectives] for s in samples])
    out = np.array(scores, dtype=float)
    return out if records and np.isfinite(out).all() else None


def conditioned_hypervolume_interval(family: Family, table: pd.DataFrame, draws: int = 300,
                                     level: float = 0.9) -> dict | None:
    """conditioned_audit's hypervolume ratio with a bootstrap interval over the held-out prompts
    (pareto.bootstrap_hypervolume_ratio: one resample of prompts for every point, seed 0): {"low", "median",
    "high", "level", "draws", "prompts"}. None without evaluated conditioned and exact points, unless they
    all saved every answer on the same prompts, or if a draw's ratio is undefined (set a's hypervolume 0, or
    scores near the float limit)."""
    names = family.spec.objective_names
    done = table[table["evaluated"].astype(bool)]
    exact, cond = list(done[done["kind"].isin(EXACT_KINDS)]["id"]), list(done[done["kind"] == "conditioned"]["id"])
    if not exact or not cond:
        return None
    records = {p.id: p.eval for p in family.points if p.eval is not None}
    scores = per_prompt_scores([records[i] for i in exact + cond], names)
    if scores is None:
        return None
    maximize = [o.maximize for o in family.spec.objectives]
    ratios = bootstrap_hypervolume_ratio(scores[:len(exact)], scores[len(exact):], maximize, draws)
    if not np.isfinite(ratios).all():
        return None
    tail = (1 - level) / 2
    low, median, high = np.quantile(ratios, [tail, 0.5, 1 - tail])
    return {"low": float(low), "median": float(median), "high": float(high), "level": level, "draws": draws,
            "prompts": scores.shape[1]}


def gains_over_base(family: Family, table: pd.DataFrame) -> pd.DataFrame | None:
    """Per evaluated point but the base model: per objective its score minus the base model's (<o>_gain),
    that gain in standard errors counted apart, sqrt(se^2 + se_base^2) (<o>_z), and paired by prompt
    (<o>_z_paired, paired_gain; NaN where either evaluation did not save every answer). None without an
    evaluated base point."""
    records = {p.id: p.eval for p in family.points if p.eval is not None}
    if "base" not in records:
        return None
    base = table.set_index("id").loc["base"]
    rows = []
    for _, r in table[table["evaluated"].astype(bool) & (table["id"] != "base")].iterrows():
        row = {"id": r["id"]}
        for o in family.spec.objective_names:
            gain = r[o] - base[o]
            paired = paired_gain(records[r["id"]], records["base"], o)
            row[f"{o}_gain"] = gain
            row[f"{o}_z"] = gain / max(float(np.hypot(r[f"{o}_stderr"], base[f"{o}_stderr"])), 1e-12)
            row[f"{o}_z_paired"] = np.nan if paired is None else paired[0] / max(paired[1], 1e-12)
        rows.append(row)
    return pd.DataFrame(rows)
