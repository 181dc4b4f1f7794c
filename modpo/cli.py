"""The command line: python -m modpo {demo, sweep, train, evaluate, front, generate, merge, mix, dashboard}.

This is the only place that parses arguments; the dashboard launches the same commands.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import fields
from pathlib import Path

from . import family as fam
from .config import EvalSettings, TrainConfig, check_no_repeat_ngram

DEFAULT_MODEL = "tiny"


def _floats(text: str) -> list[float]:
    try:
        values = [float(x) + 0.0 for x in text.split(",")]  # + 0.0 turns -0.0 into 0.0: one id per weighting
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers such as 0.7,0.3, got {text!r}") from None
    if not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"expected finite numbers such as 0.7,0.3, got {text!r}")
    return values


def _positive(kind):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a {'whole ' if kind is int else ''}number, got {text!r}"
            ) from None
        if not value > 0 or (kind is float and not math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value
    return parse


def _port(text: str) -> int:
    port = _positive(int)(text)
    if port > 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a TCP port: give one from 1 to 65535")
    return port


def _grid_step(text: str) -> float:
    value = _positive(float)(text)
    if value > 1:
        raise argparse.ArgumentTypeError(
            f"--grid-step must be in (0, 1] (the spacing of weights on the simplex), got {text}"
        )
    return value


def _temperature(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--temperature expects a number, got {text!r}") from None
    if not 0 <= value <= 5:
        raise argparse.ArgumentTypeError(f"--temperature must be in [0, 5] (0 = greedy), got {text}")
    return value


def _no_repeat_ngram(text: str) -> int:
    try:
        value = int(text)
        check_no_repeat_ngram(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--no-repeat-ngram expects 0 (off) or a whole number in [2, 16], "
                                         f"got {text!r}") from None
    return value


def add_train_options(p: argparse.ArgumentParser) -> None:
    """Every flag defaults to None: a value not given comes from the family's recipe (a new point is
    trained like the others), else from TrainConfig (the MODPO paper's recipe)."""
    d = TrainConfig()
    g = p.add_argument_group("training (defaults: the family's recipe, else the MODPO paper's)")
    g.add_argument("--beta", type=_positive(float), help=f"KL strength beta (a new family: {d.beta}; an existing "
                   "family's beta cannot change)")
    g.add_argument("--lora-r", type=_positive(int), help=f"LoRA rank (paper: {d.lora_r})")
    g.add_argument("--lora-alpha", type=_positive(float), help=f"LoRA alpha (paper: {d.lora_alpha})")
    g.add_argument(
        "--target-modules", help=f"comma-separated module names that get LoRA (default {','.join(d.target_modules)})"
    )
    g.add_argument("--lr", type=_positive(float), help=f"learning rate (paper: {d.learning_rate})")
    g.add_argument("--epochs", type=_positive(float), help=f"epochs over the pairs (paper: {d.epochs})")
    g.add_argument("--steps", type=_positive(int), help="optimizer steps; overrides --epochs")
    g.add_argument("--batch-size", type=_positive(int), help=f"pairs per step (default {d.batch_size})")
    g.add_argument("--grad-accum", type=_positive(int), help="gradient accumulation steps (default 1)")
    g.add_argument("--max-length", type=_positive(int),
                   help=f"drop (never truncate) pairs longer than this many tokens (default {d.max_length})")
    g.add_argument("--seed", type=int, help="seed for LoRA init and data order (default 0)")
    g.add_argument("--bf16", action="store_true", default=None, help="bf16 mixed precision (GPU)")


TRAIN_FLAGS = {"beta": "beta", "lora_r": "lora_r", "lora_alpha": "lora_alpha", "lr": "learning_rate",
               "epochs": "epochs", "batch_size": "batch_size", "grad_accum": "grad_accum", "max_length": "max_length",
               "seed": "seed", "bf16": "bf16"}


def train_config(a: argparse.Namespace, recipe: dict | None = None) -> TrainConfig:
    """The flags given, over the recipe (a family's, else none), over TrainConfig's defaults."""
    known = {f.name for f in fields(TrainConfig)}
    values = {k: v for k, v in (recipe or {}).items() if k in known}
    values.update({field: getattr(a, flag) for flag, field in TRAIN_FLAGS.items() if getattr(a, flag) is not None})
    if a.target_modules is not None:
        values["target_modules"] = tuple(m for m in a.target_modules.split(",") if m)
    if a.steps is not None:
        values["max_steps"] = a.steps
    elif a.epochs is not None:
        values["max_steps"] = -1
    return TrainConfig(**values)


def add_eval_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("evaluation")
    g.add_argument("--eval-prompts", help="JSON list (or {'prompts': [...]}) of held-out prompts; "
                   "default: the family's data/eval_prompts.json")
    g.add_argument("--eval-limit", type=_positive(int), help="use only the first N evaluation prompts")
    g.add_argument("--max-new-tokens", type=_positive(int), help="response length cap (default: the family's "
                   "evaluation settings, so new points compare with the old; 64 for a new family)")
    g.add_argument("--temperature", type=_temperature, help="0 = greedy (default: the family's, else 0)")
    g.add_argument("--eval-seed", type=int, help="sampling seed when temperature > 0 (default: the family's, else 0)")
    g.add_argument("--trim-capped", action=argparse.BooleanOptionalAction, default=None,
                   help="score a capped answer up to its last complete sentence (default: the family's, else off)")
    g.add_argument("--no-repeat-ngram", type=_no_repeat_ngram, help="N in 2-16: no token N-gram occurs twice in an "
                   "answer (a decoding rule against loops; 0 = off; default: the family's, else off)")


def eval_settings(a, family: fam.Family | None = None) -> EvalSettings:
    """The family's recorded evaluation settings (when it has evaluated points), overridden by the flags given."""
    recorded = fam.recorded_eval_settings(family) if family else {}
    return EvalSettings.from_recorded(recorded, max_new_tokens=a.max_new_tokens, temperature=a.temperature,
                                      seed=a.eval_seed, trim_capped=getattr(a, "trim_capped", None),
                                      no_repeat_ngram=getattr(a, "no_repeat_ngram", None))


def read_prompt_file(path: str, flag: str = "--eval-prompts") -> list[str]:
    """A JSON list of prompts, or {"prompts": [...]}; errors name the flag that gave it, what is wrong and where."""
    where = Path(path)
    if not where.is_file():
        raise ValueError(f"{flag} {path}: no such file")
    try:
        obj = fam.schema.parse(where.read_bytes().decode("utf-8"), path)
    except UnicodeDecodeError as e:
        raise ValueError(f"{flag} {path}: byte {e.start} is not UTF-8; save the file as UTF-8") from None
    if isinstance(obj, dict):
        if "prompts" not in obj:
            raise ValueError(f"{flag} {path}: a JSON object needs a 'prompts' key holding the list of prompts "
                             f"(found keys {sorted(obj)[:8]}); or give a plain JSON list")
        obj = obj["prompts"]
    if not isinstance(obj, list) or not obj or not all(isinstance(x, str) and x.strip() for x in obj):
        raise ValueError(f"{flag} {path}: expected a non-empty JSON list of non-empty prompt strings")
    return obj


def load_prompts(path: str | None, root: Path | None, limit: int | None) -> list[str] | None:
    prompts = read_prompt_file(path) if path else (fam.read_eval_prompts(root) if root else None)
    return prompts[:limit] if prompts and limit else prompts


def family_root(a, exists: bool = True) -> Path:
    """The --family folder, refused with a clear message when it is a file, or (exists) not a family."""
    root = Path(a.family)
    if root.exists() and not root.is_dir():
        raise ValueError(f"--family {root} is a file; give a family folder (one holding family.json)")
    if exists and not fam.is_family(root):
        raise ValueError(f"{root / 'family.json'}: file is missing; --family must name a family folder "
                         "(build one with `python -m modpo sweep` or `python -m modpo demo`)")
    return root


def check_comparable(family: fam.Family, prompts: list[str] | None, settings: EvalSettings) -> None:
    reason = fam.incomparable(family, prompts, settings) if prompts else None
    if reason:
        raise ValueError(f"{family.root}: refused: {reason}")


def parse_objectives(text: str) -> list[fam.Objective]:
    """'positivity:maximize:sentiment,brevity:maximize:brevity' -> objectives. The scorer 'votes' stands
    for the utility fitted to the votes given as --data (votes_data replaces it)."""
    out = []
    for item in text.split(","):
        parts = item.split(":")
        if len(parts) != 3:
            raise ValueError(f"--objectives item {item!r} must be name:direction:scorer, e.g. brevity:maximize:brevity")
        from .scorers import get_scorer
        if parts[2] != "votes":
            get_scorer(parts[2])  # unknown scorer names fail here, before any training
        out.append(fam.Objective(*parts))
    return out


def votes_data(path: str, name: str, objectives: list[fam.Objective]):
    """(dataset, record): a family's votes file as the labels of objective `name` (a new objective or
    the target). An objective whose scorer is 'votes' gets the utility fitted to the votes (the posterior
    mean weighting over the voted family's standardized scores, votes.utility_scorer) as its scorer, so it
    is evaluated and drawn on the front like any other; record says what was fitted."""
    from .votes import answer_pool, estimate_weighting, load_votes_file, utility_scorer
    names = [o.name for o in objectives]
    if name not in names:
        raise ValueError(f"--votes-objective {name!r} is not in --objectives {names}: add {name}:maximize:votes "
                         "(a new objective, evaluated by the utility fitted to the votes) or name the target")
    dataset = load_votes_file(path, name)
    record = {"objective": name, "file": str(path)}
    for o in objectives:
        if o.scorer != "votes":
            continue
        source = Path(path).parent.parent
        if Path(path).name != "votes.jsonl" or not fam.is_family(source):
            raise ValueError(f"{path}: the scorer 'votes' needs a family's data/votes.jsonl (the family says which "
                             "scorers measured the votes' answers); give objective {o.name!r} a scorer instead")
        voted = fam.load_family(source)
        votes, problems = fam.read_votes(source, {p.id for p in voted.points})
        for problem in problems:
            print(f"warning: {problem}")
        spec = voted.spec
        estimate = estimate_weighting(spec.objective_names, [x.maximize for x in spec.objectives], votes,
                                      answer_pool(voted.points, spec.objective_names))
        if not estimate.votes_used:
            raise ValueError(f"{path}: no vote says which answer is better (only ties or 'both bad'), so no utility "
                             "can be fitted; vote more on the Compare page")
        o.scorer = utility_scorer(estimate, {x.name: x.scorer for x in spec.objectives})
        record.update(scorer=o.scorer, weights=estimate.weights, sd=estimate.sd, votes_used=estimate.votes_used)
        print(f"{o.name}: evaluated by the utility fitted to {estimate.votes_used} votes, {o.scorer}")
    return dataset, record


def parse_margins(items: list[str]) -> dict[str, dict]:
    """['brevity=explicit:0.01', 'harmlessness=implicit'] -> family.json margins."""
    from .sweep import margin_adapter_id
    out = {}
    for item in items or []:
        name, _, how = item.partition("=")
        kind, _, scale = how.partition(":")
        if kind == "implicit":
            out[name] = {"kind": "implicit", "adapter": margin_adapter_id(name)}
        elif kind == "explicit":
            out[name] = {"kind": "explicit", "scale": float(scale or 1.0)}
        else:
            raise ValueError(f"--margin {item!r} must be NAME=implicit or NAME=explicit:SCALE")
    return out


def check_same_family(root: Path, spec: fam.FamilySpec) -> None:
    """A resumed sweep may not change what a family is: every point must stay comparable."""
    old = fam.read_family(root)
    differ = []
    if old.base_model != spec.base_model:
        differ.append(f"base model {old.base_model!r} -> {spec.base_model!r}")
    if [vars(o) for o in old.objectives] != [vars(o) for o in spec.objectives]:
        differ.append(f"objectives {[vars(o) for o in old.objectives]} -> {[vars(o) for o in spec.objectives]}")
    if old.target != spec.target:
        differ.append(f"target {old.target!r} -> {spec.target!r}")
    if old.beta != spec.beta:
        differ.append(f"beta {old.beta} -> {spec.beta}")
    if old.margins != spec.margins:
        differ.append(f"margins {old.margins} -> {spec.margins}")
    if differ:
        raise ValueError(f"{root} already holds a family built differently ({'; '.join(differ)}); its points would "
                         f"not be comparable. Resume it with its own settings, or start a new family with another "
                         f"--family folder")


def cmd_sweep(a) -> int:
    from .data import load_preferences
    from .models import load_base
    from .pareto import weight_grid
    from .sweep import margin_adapter_id, run_sweep

    root = family_root(a, exists=False)
    existing = fam.load_family(root) if fam.is_family(root) else None
    objectives = parse_objectives(a.objectives)
    from .votes import HUMAN
    votes_objective = a.votes_objective or (HUMAN if Path(a.data).name == "votes.jsonl" else None)
    margins = parse_margins(a.margin)
    for o in objectives:
        if o.name != a.target:
            margins.setdefault(o.name, {"kind": "implicit", "adapter": margin_adapter_id(o.name)})
            if margins[o.name]["kind"] == "explicit":
                margins[o.name]["scorer"] = o.scorer
    cfg = train_config(a, fam.family_recipe(existing) if existing else None)
    if votes_objective:
        dataset, fitted = votes_data(a.data, votes_objective, objectives)
    else:
        dataset, fitted = load_preferences(a.data, limit=a.limit), None
    if any(o.scorer == "votes" for o in objectives):
        raise ValueError("an objective's scorer is 'votes', but --data is not a votes file; give --votes-objective "
                         "with a family's data/votes.jsonl, or a real scorer")
    spec = fam.FamilySpec(root.name, a.model, objectives, a.target, cfg.beta, margins,
                          data={"source": a.data, "rows": len(dataset.rows), **({"votes": fitted} if fitted else {})})
    if existing:
        check_same_family(root, spec)
        spec = existing.spec  # keeps its notes, data and keys this version does not know
    missing = [o.name for o in objectives if o.name not in dataset.objectives and o.name in (a.target, *[
        m for m, v in margins.items() if v["kind"] == "implicit"])]
    if missing:
        raise ValueError(f"objectives {missing} need labels, but the data has only {dataset.objectives}")
    grid = [tuple(w) for w in a.weights] if a.weights else weight_grid(len(objectives), a.grid_step)
    prompts = load_prompts(a.eval_prompts, root if existing else None, a.eval_limit)
    settings = eval_settings(a, existing)
    if existing:
        check_comparable(existing, prompts, settings)
    model, tokenizer = load_base(a.model, trust_remote_code=a.trust_remote_code)
    times = run_sweep(root, spec, model, tokenizer, dataset, grid, cfg, prompts, settings)
    for stage, t in times.items():
        print(f"{stage:>30s}: {t:7.1f}s")
    return 0


def train_on_votes(a) -> int | None:
    """`train --data <voted>/data/votes.jsonl`: one weighting trained on a family's votes. A new --family
    is created as the Train page's "train on your votes" does (jobs.votes_family_plan: the votes label
    --votes-objective, default human, a new objective put first, or the target), with the voted family's
    recipe and the training flags given here, and --weights in that family's objective order (a new family
    starts, as every sweep does, from its DPO end: the votes alone). An existing
    family built from these votes trains one more weighting from its stored data (returns None)."""
    from .jobs import votes_family_args
    from .votes import HUMAN
    votes_path = Path(a.data)
    voted = votes_path.parent.parent
    if not votes_path.is_file():
        raise ValueError(f"--data {votes_path}: no such file; give a family's data/votes.jsonl (it appears with the "
                         "first vote cast on the family's Compare page)")
    if votes_path.name != "votes.jsonl" or not fam.is_family(voted):
        raise ValueError(f"--data {votes_path}: train takes only a family's data/votes.jsonl (the votes cast on its "
                         "Compare page); to train on another preference file start a family with `sweep --data`")
    root = family_root(a, exists=False)
    if fam.is_family(root):
        data = fam.read_family(root).data
        source, labelled = data.get("source"), (data.get("votes") or {}).get("objective")
        if not source or Path(source).resolve() != votes_path.resolve():
            raise ValueError(f"{root} was built from {source!r}, not {votes_path}; a family's points all train on "
                             "one dataset. Give a new --family folder to start a family on these votes")
        if a.votes_objective not in (None, labelled):
            raise ValueError(f"{root}'s votes label {labelled!r}, not {a.votes_objective!r}; drop --votes-objective "
                             "or give a new --family folder")
        return None
    for given, why in [(a.beta, "--beta: a family trained on votes takes the voted family's beta"),
                       (a.id, "--id: a new family names its points by their weights"),
                       (a.job_id, "--job-id: a new family's progress is its sweep's output"),
                       (a.no_eval or None, "--no-eval: a new family's first points are evaluated (they are its "
                                           "front)")]:
        if given is not None:
            raise ValueError(f"{why}; drop it, or train into a family built from these votes")
    args = votes_family_args(voted, root, a.votes_objective or HUMAN, a.steps, weights=a.weights)
    forwarded = [k for k in TRAIN_FLAGS if k not in ("beta", "bf16")]  # beta refused above; bf16 is a switch
    for attr in [*forwarded, "target_modules", "eval_prompts", "eval_limit", "max_new_tokens", "temperature",
                 "eval_seed", "no_repeat_ngram"]:
        value, flag = getattr(a, attr), "--" + attr.replace("_", "-")
        if value is not None:  # after the voted family's values: argparse keeps the last
            args.append(f"{flag}={value!r}" if isinstance(value, float) else f"{flag}={value}")
    args += ["--bf16"] if a.bf16 else []
    if a.trim_capped is not None:
        args.append("--trim-capped" if a.trim_capped else "--no-trim-capped")
    print("training on the votes:", " ".join(args))
    return main(args)


def cmd_train(a) -> int:
    from .data import load_jsonl
    from .models import attach_adapters, load_base, peft_name
    from .sweep import evaluate_missing, pairs_for_weighting, pairs_plan, train_point
    from .weights import weights_id

    labels_from = getattr(a, "labels_from", None)
    if labels_from is not None and a.data is not None:
        raise ValueError("--labels-from trains on another objective of this family; it does not combine with --data")
    if a.data is not None:
        started = train_on_votes(a)
        if started is not None:
            return started
    elif a.votes_objective is not None:
        raise ValueError("--votes-objective names what the votes label; give the votes with --data "
                         "<family>/data/votes.jsonl")
    root = family_root(a)
    family = fam.load_family(root)
    spec = family.spec
    weights = a.weights
    labels_from = labels_from or fam.family_labels_from(spec)  # unasked, trained like the family's points
    plan = pairs_plan(spec, weights, labels_from)  # validate first: the weights, and the margins they need
    objective, margins = plan.objective, plan.margins
    if a.beta is not None and a.beta != spec.beta:
        raise ValueError(f"--beta {a.beta:g}: this family's beta is {spec.beta:g}, and a point trained at another "
                         "beta solves another problem (not comparable); drop --beta, or start a new family with "
                         "`sweep --beta`")
    cfg = train_config(a, {**fam.family_recipe(family), "beta": spec.beta})
    prompts = None if a.no_eval else load_prompts(a.eval_prompts, root, a.eval_limit)
    settings = eval_settings(a, family)
    check_comparable(family, prompts, settings)
    point_id = fam.check_new_id(a.id or weights_id(weights))
    if fam.adapter_dir(root, point_id).exists():
        raise ValueError(f"adapter {point_id!r} already exists in {root}; pick another --id or delete it")
    stored = fam.read_pairs(root, spec.target)
    if stored is None:
        raise ValueError(f"{root}: no precomputed pairs for {spec.target!r}; run `python -m modpo sweep` first")
    dataset = None
    if objective != spec.target:
        if not fam.preferences_file(root).exists():
            raise ValueError(f"{root}: {point_id} trains on {objective!r}'s labels, and the family keeps no "
                             f"{fam.preferences_file(root).name} to take them from")
        dataset = load_jsonl(fam.preferences_file(root))
    job_id = a.job_id or point_id
    try:
        model, tokenizer = load_base(spec.base_model)
        implicit = {peft_name(m.adapter): fam.adapter_dir(root, m.adapter) for m in margins if m.kind == "implicit"}
        model = attach_adapters(model, implicit)
        if objective == spec.target:  # the stored pairs every weighting of the family trained on
            pairs = stored[1]
        else:  # another objective's labels (a vertex: DPO), precomputed once and cached in data/
            pairs = pairs_for_weighting(root, spec, model, tokenizer, dataset, weights, cfg.max_length, labels_from)
        _, model = train_point(root, spec, model, pairs, weights, cfg, point_id, job_id=job_id, final=not prompts,
                               labels_from=labels_from)
        print(f"trained {point_id}")
        if prompts:
            fam.write_status(root, job_id, phase="evaluating", eval_started=time.time())
            evaluate_missing(root, model, tokenizer, prompts, settings,
                             on_progress=lambda done, total: fam.write_status(root, job_id, eval_done=done,
                                                                              eval_total=total))
            fam.write_status(root, job_id, state="done", phase="evaluated", finished=time.time())
    except BaseException as e:
        if a.job_id and (fam.job_dir(root, job_id) / "status.json").exists() \
                and fam.read_status(root, job_id)["state"] in ("queued", "running"):
            fam.write_status(root, job_id, state="failed", finished=time.time(),
                             error=f"{type(e).__name__}: {e}" if str(e) else type(e).__name__)
        raise
    finally:
        fam.write_family(root, spec)
    return 0


def cmd_evaluate(a) -> int:
    from .models import load_base
    from .sweep import evaluate_missing

    root = family_root(a)
    family = fam.load_family(root)
    prompts = load_prompts(a.eval_prompts, root, a.eval_limit)
    if not prompts:
        raise ValueError(f"{root}: no evaluation prompts; pass --eval-prompts FILE")
    settings = eval_settings(a, family)
    if not a.force:
        check_comparable(family, prompts, settings)
    model, tokenizer = load_base(family.spec.base_model)
    done = evaluate_missing(root, model, tokenizer, prompts, settings, force=a.force)
    print(f"evaluated {len(done)} policies: {', '.join(done) or 'none needed (use --force)'}")
    return 0


def cmd_front(a) -> int:
    from .front import (
        conditioned_audit,
        conditioned_hypervolume_interval,
        front_table,
        gains_over_base,
        table_hypervolume,
    )

    family = fam.load_family(family_root(a))
    for e in family.errors:
        print(f"warning: {e}", file=sys.stderr)
    table = front_table(family)
    names = family.spec.objective_names
    cols = ["id", "kind", *[f"w_{o}" for o in names], *[c for o in names for c in (o, f"{o}_stderr")], "kl", "on_front"]
    print(table[cols].to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    hv, ref = table_hypervolume(family, table)
    dirs = ", ".join(f"{o.name} ({o.direction})" for o in family.spec.objectives)
    print(f"\nhypervolume {hv:.6g} over {dirs}, reference point {ref.round(4).tolist()}")
    print(f"{int(table['on_front'].sum())} of {int(table['evaluated'].sum())} evaluated points are non-dominated")
    gains = gains_over_base(family, table)
    if gains is not None and not gains.empty:
        print("\ngains over the base model: score - base (<objective>_gain), in standard errors counted apart "
              "(_z) and paired by prompt (_z_paired: the same prompts answered by both; NaN where the answers "
              "were not all saved):")
        print(gains.to_string(index=False, float_format=lambda x: f"{x:+.3f}"))
    audit = conditioned_audit(family, table)
    if audit is not None:
        rows, summary = audit
        print("\nthe conditioned adapter against the exact adapters (score difference in standard errors):")
        print(rows.to_string(index=False, float_format=lambda x: f"{x:+.2f}"))
        print(f"hypervolume: exact {summary['hypervolume_exact']:.6g} ({summary['exact_points']} adapters), "
              f"conditioned {summary['hypervolume_conditioned']:.6g} ({summary['conditioned_points']} points), "
              f"ratio {summary['ratio']:.3f}, reference point {[round(x, 4) for x in summary['reference_point']]}")
        interval = conditioned_hypervolume_interval(family, table)
        if interval is not None:
            print(f"the ratio resampled over the {interval['prompts']} held-out prompts ({interval['draws']} bootstrap "
                  f"draws): median {interval['median']:.3f}, {interval['level']:.0%} interval "
                  f"{interval['low']:.3f}-{interval['high']:.3f}")
    return 0


def cmd_train_conditioned(a) -> int:
    """One weight-conditioned adapter for the whole front (conditioned.py), trained on the family's stored
    target pairs (no new precompute) and saved as conditioned/<id>; an existing one is kept (resumable)."""
    from .sweep import train_family_conditioned

    root = family_root(a)
    family = fam.load_family(root)
    cid = fam.check_id(a.id)
    if fam.conditioned_dir(root, cid).exists():
        print(f"{fam.conditioned_dir(root, cid)} already exists; kept (delete it to train again)")
    else:
        train_family_conditioned(root, cid, train_config(a, {**fam.family_recipe(family), "beta": family.spec.beta}),
                                 a.eps, loss_scale=a.loss_scale, per_objective=a.per_objective, labels=a.labels)
    return conditioned_points(a, root, cid)


def conditioned_points(a, root: Path, cid: str) -> int:
    """Add the conditioned adapter's grid and trained weightings as points, then evaluate them like every
    point (unless --no-eval): they are drawn and compared like any point, and audited (front.py)."""
    from .models import load_base
    from .sweep import evaluate_missing, publish_conditioned_points

    made = publish_conditioned_points(root, cid)
    print(f"added {len(made)} weightings of {cid} as points")
    if a.no_eval:
        return 0
    family = fam.load_family(root)
    prompts = load_prompts(a.eval_prompts, root, a.eval_limit)
    settings = eval_settings(a, family)
    check_comparable(family, prompts, settings)
    model, tokenizer = load_base(family.spec.base_model)
    evaluated = evaluate_missing(root, model, tokenizer, prompts, settings)
    print(f"evaluated {len(evaluated)} points")
    return 0


def cmd_export(a) -> int:
    """A conditioned adapter at one weighting as a plain peft LoRA folder (exact: conditioned.export_lora)."""
    from .conditioned import export_weighting
    from .weights import validate_simplex

    root = family_root(a)
    spec = fam.read_family(root)
    tensors, meta = fam.read_conditioned(root, a.id)
    weights = validate_simplex(a.weights, spec.objective_names)
    out = Path(a.out)
    export_weighting(spec, tensors, meta, weights, out)
    print(f"wrote {out}: a plain LoRA of {a.id} at {dict(zip(spec.objective_names, weights))}; load it with "
          "PeftModel.from_pretrained")
    return 0


def cmd_generate(a) -> int:
    from .evaluate import adapters_of, answer_points, policy_of
    from .models import attach_adapters, load_base

    family = fam.load_family(family_root(a))
    points = [family.point(i) for i in a.adapters.split(",")]
    model, tokenizer = load_base(family.spec.base_model)
    model = attach_adapters(model, adapters_of(family, points))
    settings = EvalSettings(max_new_tokens=a.max_new_tokens, temperature=a.temperature, seed=a.seed,
                            **EvalSettings.answer_rules_of(fam.recorded_eval_settings(family)))
    answers = answer_points(model, tokenizer, family.spec, [a.prompt], {p.id: policy_of(p) for p in points}, settings)
    for p in points:
        scores = ", ".join(f"{k} {v[0]:.3g}" for k, v in answers[p.id]["scores"].items())
        print(f"--- {p.id} ({scores}) ---\n{answers[p.id]['texts'][0]}\n")
    return 0


def cmd_instant(a) -> int:
    from .instant import make_instant_point
    root = family_root(a)
    family = fam.load_family(root)
    prompts = load_prompts(a.eval_prompts, root, a.eval_limit)
    if not prompts:
        raise ValueError(f"{root}: no evaluation prompts; pass --eval-prompts FILE")
    settings = eval_settings(a, family)  # make_instant_point refuses settings the family was not measured with
    meta, _ = make_instant_point(root, a.weights, a.command, prompts, settings,
                                 a.sources.split(",") if a.sources else None, getattr(a, "combination", "cat"))
    print(f"{a.command} point {meta['id']} evaluated; produced in {meta['wall_time_s']:.2f}s")
    return 0


def cmd_coherence(a) -> int:
    from .coherence import OFF_TOPIC, check_family, default_prompts
    from .evaluate import adapters_of
    from .models import attach_adapters, load_base

    family = fam.load_family(family_root(a))
    for e in family.errors:
        print(f"warning: {e}", file=sys.stderr)
    prompts = read_prompt_file(a.prompts, "--prompts") if a.prompts else default_prompts()
    model, tokenizer = load_base(family.spec.base_model)
    model = attach_adapters(model, adapters_of(family, family.points))
    report = check_family(model, tokenizer, family, prompts)
    print(f"{len(prompts)} prompts; off topic = relevance < {OFF_TOPIC}; degenerate = under 3 words, a phrase loop, "
          "or one answer to 3+ prompts")
    print(f"{'point':>16s} {'relevance':>9s} {'x base':>6s} {'degenerate':>10s} {'off topic':>9s} {'bad':>5s}")
    for pid, r in report.items():
        print(f"{pid:>16s} {r['relevance']:9.3f} {r['relevance_vs_base']:6.2f} {r['degenerate']:10.0%} "
              f"{r['off_topic']:9.0%} {r['bad']:5.0%}")
    if a.json:
        Path(a.json).write_text(json.dumps({"prompts": prompts, "points": report}, indent=2) + "\n")
        print(f"answers and scores: {a.json}")
    return 0


def cmd_dashboard(a) -> int:
    """Start the app bound to --host (loopback unless asked otherwise), as an argument list."""
    import subprocess

    import dashboard
    app = Path(dashboard.__file__).resolve().parent / "app.py"  # also inside an installed wheel
    argv = [sys.executable, "-m", "streamlit", "run", str(app), "--server.address", a.host,
            "--server.port", str(a.port), "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    env = dict(os.environ, **({"MODPO_CHECKPOINTS": str(Path(a.checkpoints).resolve())} if a.checkpoints else {}))
    if a.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: serving on {a.host}: anyone who can reach this machine can browse and train your families "
              "(see SECURITY.md)", file=sys.stderr)
    return subprocess.call(argv, env=env)


def cmd_demo(a) -> int:
    from .demo import build_demo
    build_demo(Path(a.family), steps=a.steps)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m modpo", description="Multi-objective DPO: train, evaluate "
                                     "and inspect a family of LoRA adapters, one per weighting of the objectives.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("sweep", help="train a whole family: margin models, DPO endpoint, a grid of weightings",
                       description="Create or resume a family. Finished adapters are skipped.")
    p.add_argument("--family", required=True, help="family folder to create or resume, e.g. checkpoints/mine")
    p.add_argument("--data", required=True, help="preferences: a .jsonl file (schema in modpo/data.py), "
                   "'pku-saferlhf[:path]', or an HF dataset with PKU-SafeRLHF columns")
    p.add_argument("--limit", type=_positive(int), help="use only the first N rows of the data")
    p.add_argument("--model", default=DEFAULT_MODEL, help="base model: tiny, smollm2-135m-instruct, a local folder "
                   "or an HF name (default %(default)s)")
    p.add_argument("--trust-remote-code", action="store_true", help="allow the model's own code (off by default)")
    p.add_argument("--objectives", required=True, help="name:direction:scorer,... e.g. "
                   "positivity:maximize:sentiment,brevity:maximize:brevity")
    p.add_argument("--target", required=True, help="the objective whose preference labels MODPO trains on")
    p.add_argument("--votes-objective", metavar="NAME", help="--data is a family's data/votes.jsonl: its votes are "
                   "the labels of objective NAME, a new one (its scorer 'votes' in --objectives: the utility fitted "
                   "to the votes) or the target (default: human, when --data is named votes.jsonl)")
    p.add_argument("--margin", action="append", help="NAME=implicit (train a DPO margin model, the default) or "
                   "NAME=explicit:SCALE (scorer value x SCALE, on the beta*log-ratio scale); repeatable")
    p.add_argument("--grid-step", type=_grid_step, default=0.25, help="interior weight grid spacing, in (0, 1] "
                   "(default %(default)s)")
    p.add_argument(
        "--weights", nargs="+", type=_floats, help="explicit weightings instead of a grid, e.g. 0.7,0.3 0.4,0.6"
    )
    add_train_options(p)
    add_eval_options(p)
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("train", help="train one more weighting into an existing family (uses its stored data)")
    p.add_argument("--family", required=True, help="family folder")
    p.add_argument("--weights", required=True, type=_floats,
                   help="one weight per objective in family order, summing to 1")
    p.add_argument("--id", help="adapter id (default w-<weights>)")
    p.add_argument("--data", help="a family's data/votes.jsonl: train on its votes, into a new --family (created as "
                   "the Train page's 'train on your votes' does; --weights in its order: the votes objective "
                   "first, then the voted family's) or one built from these votes")
    p.add_argument("--votes-objective", metavar="NAME", help="with --data: the votes label objective NAME, a new "
                   "one (default human) or the voted family's target")
    p.add_argument("--labels-from", metavar="OBJECTIVE", help="train on OBJECTIVE's labels instead of the "
                   "target's, every other objective a margin (the target's being its Bradley-Terry reward): the same "
                   "optimum, divided by OBJECTIVE's weight instead of the target's (README, the demo family); "
                   "'all': every objective's labels, each objective's loss weighted by its weight squared (the same "
                   "optimum, no divisor, each objective pulling in proportion to its weight); 'largest': the labels "
                   "of the objective with the most weight (the demo's recipe)")
    p.add_argument("--job-id", help="write progress to jobs/<job-id>/status.json (the dashboard sets this)")
    p.add_argument("--no-eval", action="store_true", help="skip evaluation after training")
    add_train_options(p)
    add_eval_options(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("train-conditioned", help="train one weight-conditioned adapter for every weighting "
                       "(Panacea SVD-LoRA) on the family's stored pairs")
    p.add_argument("--family", required=True, help="family folder")
    p.add_argument("--id", default="conditioned", help="its name under conditioned/ (default %(default)s)")
    p.add_argument("--eps", type=float, default=0.05, help="the target objective's least weight in training "
                   "(MODPO divides by it; default %(default)s)")
    p.add_argument("--per-objective", type=_positive(int), default=1, help="singular values per objective that "
                   "carry its weight (Panacea: 1; the rest of the rank is free; default %(default)s)")
    p.add_argument("--labels", choices=["target", "largest", "all"], default="target", help="whose labels train "
                   "each pair: the target's (w_target >= --eps), or those of the weighting's largest objective, the "
                   "others its margins, or every objective's, each loss weighted by its weight squared; the last two "
                   "over the whole simplex (a Bradley-Terry-labelled family; default %(default)s)")
    p.add_argument("--loss-scale", choices=["none", "target"], default="none",
                   help="'target': each pair's loss times its target weight (the same optimum at every w, bounded "
                        "gradients near w_target = eps; default %(default)s)")
    p.add_argument("--no-eval", action="store_true", help="add its grid points but do not evaluate them")
    add_train_options(p)
    add_eval_options(p)
    p.set_defaults(func=cmd_train_conditioned)

    p = sub.add_parser("export", help="write a conditioned adapter at one weighting as a plain peft LoRA folder")
    p.add_argument("--family", required=True, help="family folder")
    p.add_argument("--id", default="conditioned", help="the conditioned adapter (default %(default)s)")
    p.add_argument("--weights", required=True, type=_floats, help="one weight per objective in family order")
    p.add_argument("--out", required=True, help="the new adapter folder to write")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("evaluate", help="evaluate the base model and adapters lacking eval.json")
    p.add_argument("--family", required=True, help="family folder")
    p.add_argument("--force", action="store_true", help="re-evaluate everything")
    add_eval_options(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("front", help="print the family's table, front and hypervolume")
    p.add_argument("--family", required=True, help="family folder")
    p.set_defaults(func=cmd_front)

    p = sub.add_parser("generate", help="answer one prompt with several adapters in one batch")
    p.add_argument("--family", required=True, help="family folder")
    p.add_argument("--adapters", required=True, help="comma-separated adapter ids ('base' for the base model)")
    p.add_argument("--prompt", required=True, help="the prompt")
    p.add_argument("--max-new-tokens", type=_positive(int), default=64)
    p.add_argument("--temperature", type=_temperature, default=0.0, help="0 = greedy")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_generate)
    for name, text in (("merge", "a new adapter merged from existing ones (rewarded soups), evaluated"),
                       ("mix", "decoding-time mixing of existing adapters (MOD), evaluated")):
        p = sub.add_parser(name, help=text, description=text + ". The sources' coefficients solve "
                           "w = sum_i c_i w_i, so the point sits at the same weighting as a trained one.")
        p.add_argument("--family", required=True, help="family folder")
        p.add_argument("--weights", required=True, type=_floats,
                       help="one weight per objective in family order, summing to 1")
        p.add_argument("--sources", help="comma-separated source adapter ids (default: per objective the trained "
                       "adapter with the most weight on it, or the DPO endpoint and the margin models)")
        if name == "merge":
            p.add_argument("--combination", default="cat", choices=["cat", "linear", "svd"],
                           help="peft combination type; cat is the exact weighted sum of LoRA deltas (default)")
        add_eval_options(p)
        p.set_defaults(func=cmd_instant)

    p = sub.add_parser("demo", help="build (or resume) the demo family: relevance, sentiment and brevity on "
                       "SmolLM2-135M-Instruct",
                       description="Samples on-policy pairs labelled by a Bradley-Terry model of three scorers, trains "
                       "the three vertices (DPO) and six MODPO weightings (relevance labels, sentiment and brevity "
                       "margins), evaluates them and the base model, checks their coherence on prompts written apart, "
                       "and draws the front. Offline; the README gives the measured build time.")
    p.add_argument("--family", default="checkpoints/demo", help="where to build it (default %(default)s)")
    p.add_argument("--steps", type=_positive(int), help="optimizer steps per adapter (default: the demo recipe's)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("coherence", help="answer prompts nobody tuned for with every point and judge the answers",
                       description="Greedy answers (the family's evaluation settings) from the base model and every "
                       "point; per point the mean relevance to the prompt (MiniLM cosine), and the shares of "
                       "degenerate and off-topic answers.")
    p.add_argument("--family", required=True, help="family folder")
    p.add_argument("--prompts", help="JSON list (or {'prompts': [...]}) of prompts; default: the shipped set "
                   "written apart from the demo's train and evaluation prompts")
    p.add_argument("--json", help="also write every answer with its scores to this file")
    p.set_defaults(func=cmd_coherence)

    p = sub.add_parser("dashboard", help="open the dashboard (bound to 127.0.0.1 unless --host says otherwise)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s: this machine "
                   "only; 0.0.0.0 exposes it to the network, see SECURITY.md)")
    p.add_argument("--port", type=_port, default=8501, help="port, 1-65535 (default %(default)s)")
    p.add_argument("--checkpoints", help="the checkpoints root (default $MODPO_CHECKPOINTS or ./checkpoints)")
    p.set_defaults(func=cmd_dashboard)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print(f"interrupted: `{args.command}` stopped; nothing half-written was kept in the family (finished "
              "adapters stay; re-run the command to resume)", file=sys.stderr)
        return 130
    except (ValueError, fam.FamilyError, FileNotFoundError, FileExistsError, KeyError) as e:
        if os.environ.get("MODPO_DEBUG"):
            raise
        message = e.args[0] if isinstance(e, KeyError) and e.args else e  # a KeyError's str() adds quotes
        print(f"error: {message}", file=sys.stderr)
        return 2


def run() -> None:
    """The `modpo` console script (pyproject.toml)."""
    sys.exit(main())
