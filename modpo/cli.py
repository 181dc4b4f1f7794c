"""The command line: python -m modpo {demo, sweep, train, evaluate, front, generate}.

This is the only place that parses arguments; the dashboard launches the same commands.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from . import family as fam
from .config import TrainConfig

DEFAULT_MODEL = "tiny"


def _floats(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers such as 0.7,0.3, got {text!r}") from None


def _positive(kind):
    def parse(text):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value
    return parse


def _temperature(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 5:
        raise argparse.ArgumentTypeError(f"--temperature must be in [0, 5] (0 = greedy), got {text}")
    return value


def add_train_options(p: argparse.ArgumentParser) -> None:
    d = TrainConfig()
    g = p.add_argument_group("training (defaults: the MODPO paper's recipe)")
    g.add_argument("--beta", type=_positive(float), default=d.beta, help="KL strength beta (default %(default)s)")
    g.add_argument("--lora-r", type=_positive(int), default=d.lora_r, help="LoRA rank (default %(default)s)")
    g.add_argument("--lora-alpha", type=_positive(float), default=d.lora_alpha, help="LoRA alpha (default %(default)s)")
    g.add_argument("--target-modules", default=",".join(d.target_modules),
                   help="comma-separated module names that get LoRA (default %(default)s)")
    g.add_argument("--lr", type=_positive(float), default=d.learning_rate, help="learning rate (default %(default)s)")
    g.add_argument("--epochs", type=_positive(float), default=d.epochs, help="epochs over the pairs (default %(default)s)")
    g.add_argument("--steps", type=int, default=-1, help="optimizer steps; overrides --epochs when > 0")
    g.add_argument("--batch-size", type=_positive(int), default=d.batch_size, help="pairs per step (default %(default)s)")
    g.add_argument("--grad-accum", type=_positive(int), default=d.grad_accum, help="gradient accumulation steps")
    g.add_argument("--max-length", type=_positive(int), default=d.max_length,
                   help="drop (never truncate) pairs longer than this many tokens (default %(default)s)")
    g.add_argument("--seed", type=int, default=d.seed, help="seed for LoRA init and data order (default %(default)s)")
    g.add_argument("--bf16", action="store_true", help="bf16 mixed precision (GPU)")


def train_config(a: argparse.Namespace) -> TrainConfig:
    return TrainConfig(beta=a.beta, lora_r=a.lora_r, lora_alpha=a.lora_alpha,
                       target_modules=tuple(a.target_modules.split(",")), learning_rate=a.lr, epochs=a.epochs,
                       max_steps=a.steps if a.steps > 0 else -1, batch_size=a.batch_size, grad_accum=a.grad_accum,
                       max_length=a.max_length, seed=a.seed, bf16=a.bf16)


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


def eval_settings(a, root: Path | None = None):
    """The family's recorded evaluation settings (when it has evaluated points), overridden by the flags given."""
    from .evaluate import EvalSettings
    recorded = fam.recorded_eval_settings(fam.load_family(root)) if root and (Path(root) / "family.json").exists() else {}
    base = {k: v for k, v in recorded.items() if k in EvalSettings.__dataclass_fields__}
    given = {"max_new_tokens": a.max_new_tokens, "temperature": a.temperature, "seed": a.eval_seed,
             "trim_capped": getattr(a, "trim_capped", None)}
    return EvalSettings(**{**base, **{k: v for k, v in given.items() if v is not None}})


def load_prompts(path: str | None, root: Path | None, limit: int | None) -> list[str] | None:
    from .family import read_eval_prompts
    if path:
        obj = json.loads(Path(path).read_text())
        prompts = obj["prompts"] if isinstance(obj, dict) else obj
        if not isinstance(prompts, list) or not all(isinstance(p, str) and p.strip() for p in prompts):
            raise ValueError(f"{path}: expected a JSON list of non-empty prompt strings")
    else:
        prompts = read_eval_prompts(root) if root else None
    return prompts[:limit] if prompts and limit else prompts


def parse_objectives(text: str) -> list[fam.Objective]:
    """'positivity:maximize:sentiment,brevity:maximize:brevity' -> objectives."""
    out = []
    for item in text.split(","):
        parts = item.split(":")
        if len(parts) != 3:
            raise ValueError(f"--objectives item {item!r} must be name:direction:scorer, e.g. brevity:maximize:brevity")
        from .scorers import get_scorer
        get_scorer(parts[2])  # unknown scorer names fail here, before any training
        out.append(fam.Objective(*parts))
    return out


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


def cmd_sweep(a) -> int:
    from .data import load_preferences
    from .models import load_base
    from .pareto import weight_grid
    from .sweep import run_sweep

    root = Path(a.family)
    objectives = parse_objectives(a.objectives)
    margins = parse_margins(a.margin)
    for o in objectives:
        if o.name != a.target:
            margins.setdefault(o.name, {"kind": "implicit", "adapter": f"dpo-{o.name}"})
            if margins[o.name]["kind"] == "explicit":
                margins[o.name]["scorer"] = o.scorer
    cfg = train_config(a)
    dataset = load_preferences(a.data, limit=a.limit)
    spec = fam.FamilySpec(root.name, a.model, objectives, a.target, cfg.beta, margins,
                          data={"source": a.data, "rows": len(dataset.rows)})
    missing = [o.name for o in objectives if o.name not in dataset.objectives and o.name in (a.target, *[
        m for m, v in margins.items() if v["kind"] == "implicit"])]
    if missing:
        raise ValueError(f"objectives {missing} need labels, but the data has only {dataset.objectives}")
    grid = [tuple(w) for w in a.weights] if a.weights else weight_grid(len(objectives), a.grid_step)
    prompts = load_prompts(a.eval_prompts, root if (root / "data").exists() else None, a.eval_limit)
    model, tokenizer = load_base(a.model, trust_remote_code=a.trust_remote_code)
    times = run_sweep(root, spec, model, tokenizer, dataset, grid, cfg, prompts, eval_settings(a, root))
    for stage, t in times.items():
        print(f"{stage:>30s}: {t:7.1f}s")
    return 0


def cmd_train(a) -> int:
    from .models import attach_adapters, load_base, peft_name
    from .sweep import evaluate_missing, margin_specs, train_point
    from .weights import target_first, weights_id

    root = Path(a.family)
    family = fam.load_family(root)
    spec = family.spec
    weights = a.weights
    target_first(spec.objective_names, spec.target, weights)  # validate before loading anything
    stored = fam.read_pairs(root, spec.target)
    if stored is None:
        raise ValueError(f"{root}: no precomputed pairs for {spec.target!r}; run `python -m modpo sweep` first")
    info, pairs = stored
    cfg = train_config(a)
    point_id = a.id or weights_id(weights)
    if fam.adapter_dir(root, point_id).exists():
        raise ValueError(f"adapter {point_id!r} already exists in {root}; pick another --id or delete it")
    model, tokenizer = load_base(spec.base_model)
    implicit = {peft_name(m.adapter): fam.adapter_dir(root, m.adapter) for m in margin_specs(spec) if m.kind == "implicit"}
    model = attach_adapters(model, implicit)
    _, model = train_point(root, spec, model, pairs, weights, cfg, point_id, job_id=a.job_id)
    print(f"trained {point_id}")
    if not a.no_eval:
        prompts = load_prompts(a.eval_prompts, root, a.eval_limit)
        if prompts:
            if a.job_id:
                fam.write_status(root, a.job_id, state="running", phase="evaluating")
            evaluate_missing(root, model, tokenizer, prompts, eval_settings(a, root))
        if a.job_id:
            fam.write_status(root, a.job_id, state="done", phase="evaluated", finished=time.time())
    fam.write_family(root, spec)
    return 0


def cmd_evaluate(a) -> int:
    from .models import load_base
    from .sweep import evaluate_missing

    root = Path(a.family)
    spec = fam.read_family(root)
    prompts = load_prompts(a.eval_prompts, root, a.eval_limit)
    if not prompts:
        raise ValueError(f"{root}: no evaluation prompts; pass --eval-prompts FILE")
    model, tokenizer = load_base(spec.base_model)
    done = evaluate_missing(root, model, tokenizer, prompts, eval_settings(a, root), force=a.force)
    print(f"evaluated {len(done)} policies: {', '.join(done) or 'none needed (use --force)'}")
    return 0


def cmd_front(a) -> int:
    from .front import front_table, table_hypervolume

    family = fam.load_family(Path(a.family))
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
    return 0


def cmd_generate(a) -> int:
    from .generate import BASE, GenerationSettings, generate
    from .models import attach_adapters, load_base, peft_name

    family = fam.load_family(Path(a.family))
    ids = a.adapters.split(",")
    points = [family.point(i) for i in ids]
    model, tokenizer = load_base(family.spec.base_model)
    model = attach_adapters(model, {peft_name(p.id): p.path for p in points if p.kind != "base"})
    names = [BASE if p.kind == "base" else peft_name(p.id) for p in points]
    outs = generate(model, tokenizer, [a.prompt] * len(names), names,
                    GenerationSettings(a.max_new_tokens, a.temperature, 1.0, a.seed))
    for p, o in zip(points, outs):
        print(f"--- {p.id} ---\n{o['text']}\n")
    return 0


def cmd_instant(a) -> int:
    from .instant import make_instant_point
    root = Path(a.family)
    prompts = load_prompts(a.eval_prompts, root, a.eval_limit)
    if not prompts:
        raise ValueError(f"{root}: no evaluation prompts; pass --eval-prompts FILE")
    meta, _ = make_instant_point(root, a.weights, a.command, prompts, eval_settings(a, root),
                              a.sources.split(",") if a.sources else None, getattr(a, "combination", "cat"))
    print(f"{a.command} point {meta['id']} evaluated; produced in {meta['wall_time_s']:.2f}s")
    return 0


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
    p.add_argument("--margin", action="append", help="NAME=implicit (train a DPO margin model, the default) or "
                   "NAME=explicit:SCALE (scorer value x SCALE, on the beta*log-ratio scale); repeatable")
    p.add_argument("--grid-step", type=float, default=0.25, help="interior weight grid spacing (default %(default)s)")
    p.add_argument("--weights", nargs="+", type=_floats, help="explicit weightings instead of a grid, e.g. 0.7,0.3 0.4,0.6")
    add_train_options(p)
    add_eval_options(p)
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("train", help="train one more weighting into an existing family (uses its stored data)")
    p.add_argument("--family", required=True, help="family folder")
    p.add_argument("--weights", required=True, type=_floats,
                   help="one weight per objective in family order, summing to 1")
    p.add_argument("--id", help="adapter id (default w-<weights>)")
    p.add_argument("--job-id", help="write progress to jobs/<job-id>/status.json (the dashboard sets this)")
    p.add_argument("--no-eval", action="store_true", help="skip evaluation after training")
    add_train_options(p)
    add_eval_options(p)
    p.set_defaults(func=cmd_train)

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
        p.add_argument("--sources", help="comma-separated source adapter ids (default: the DPO endpoint and the "
                       "margin model, or the lowest-target-weight adapter)")
        if name == "merge":
            p.add_argument("--combination", default="cat", choices=["cat", "linear", "svd"],
                           help="peft combination type; cat is the exact weighted sum of LoRA deltas (default)")
        add_eval_options(p)
        p.set_defaults(func=cmd_instant)

    p = sub.add_parser("demo", help="build (or resume) the demo family: sentiment vs. brevity on SmolLM2-135M-Instruct",
                       description="Samples on-policy pairs, trains the DPO endpoint on brevity and 5 MODPO weightings "
                       "with a sentiment margin, evaluates them and the base model, and draws the front. Offline; "
                       "20-45 min on 2 CPU cores (measured 19 and 44 on two machines).")
    p.add_argument("--family", default="checkpoints/demo", help="where to build it (default %(default)s)")
    p.add_argument("--steps", type=_positive(int), help="optimizer steps per adapter (default: the demo recipe's)")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, fam.FamilyError, FileNotFoundError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
