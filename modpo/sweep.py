"""Training a family: margin models, the precompute, one adapter per weighting, evaluation.

Each adapter is trained into jobs/<id>/adapter and renamed into adapters/<id> only when complete,
so a killed run leaves nothing half-written in the family, and a re-run skips what is done.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from . import family as fam
from .config import TrainConfig
from .data import PreferenceDataset, load_jsonl, tokenize_pairs, write_jsonl
from .evaluate import EvalSettings, adapters_of, evaluate_points, policy_of
from .family import read_eval_prompts  # noqa: F401 (re-exported)
from .feedback import chosen_probability
from .margins import MarginSpec, margin_summary, precompute_columns
from .models import attach_adapters, library_versions, peft_name, record_base_model, tokenizer_fingerprint
from .train import train_adapter
from .weights import EVERY, loss_plan, no_target_reward, reorder, weights_id
from .weights import target_first as _target_first  # noqa: F401 (re-exported)


def margin_adapter_id(objective: str) -> str:
    return f"dpo-{objective}"


def target_first(spec: fam.FamilySpec, weights) -> list[float]:
    """Family-order weights -> the loss's order (see weights.target_first)."""
    return _target_first(spec.objective_names, spec.target, weights)


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def margin_specs(spec: fam.FamilySpec, labels_from: str | None = None) -> list[MarginSpec]:
    """The margins of the objectives other than the one whose labels train (the family's target unless
    labels_from): the family's margins, and for the target itself its true reward, known only where the
    family's labels were drawn from a Bradley-Terry model of its scorers (family.json labels.reward_scales).
    labels_from EVERY: every objective's reward, in family order (the columns of modpo_mixture_loss)."""
    labelled = labels_from or spec.target
    out = []
    for o in spec.objectives:
        if o.name == labelled:
            continue
        if o.name == spec.target:
            if not spec.reward_known(o.name):
                raise ValueError(f"family {spec.name!r}: {no_target_reward(spec.target, labelled)}")
            out.append(MarginSpec.from_json(o.name, {"kind": "explicit", "scorer": o.scorer,
                                                     "scale": spec.label_scale(o.name)}, o.maximize))
            continue
        if o.name not in spec.margins:
            raise ValueError(f"family {spec.name!r} has no margin for objective {o.name!r}; "
                             "add {'kind': 'implicit'|'explicit', ...} under 'margins' in family.json")
        out.append(MarginSpec.from_json(o.name, spec.margins[o.name], o.maximize))
    return out


@dataclass(frozen=True)
class PairsPlan:
    """Which stored pairs a weighting trains on: loss_plan's objective and weights, then the objective whose labels
    the pairs carry, their margin columns, and where they are cached (data/pairs-<store or labelled>)."""
    objective: str
    ordered: list[float]
    labelled: str
    margins: list[MarginSpec]
    store: str | None = None


def pairs_plan(spec: fam.FamilySpec, weights, labels_from: str | None = None) -> PairsPlan:
    """The target's pairs with every margin; for a vertex of another objective its own labels without margins;
    for another objective's labels with margins (labels_from, or no weight on the target) those labels with every
    other objective's margin, stored apart so its plain DPO pairs stay cached too; for EVERY the target's
    pairs with every objective's reward. The one home of this choice: the sweep and `train` both ask it."""
    objective, ordered = loss_plan(spec.objective_names, spec.target, weights, labels_from)
    if objective == spec.target:
        return PairsPlan(objective, ordered, objective, margin_specs(spec))
    if objective == EVERY:
        return PairsPlan(objective, ordered, spec.target, margin_specs(spec, EVERY), f"{EVERY}-margins")
    if len(ordered) == 1:
        return PairsPlan(objective, ordered, objective, [])
    return PairsPlan(objective, ordered, objective, margin_specs(spec, objective), f"{objective}-margins")


def pairs_for_weighting(root: Path, spec: fam.FamilySpec, model, tokenizer, dataset: PreferenceDataset, weights,
                        max_length: int, labels_from: str | None = None) -> list[dict]:
    """The stored pairs a weighting trains on (pairs_plan says which), computed once and cached."""
    plan = pairs_plan(spec, weights, labels_from)
    return prepare_pairs(root, spec, model, tokenizer, dataset, plan.labelled, plan.margins, max_length,
                         store=plan.store)


def margined_pairs(root: Path, spec: fam.FamilySpec, model, tokenizer, dataset: PreferenceDataset, objective: str,
                   max_length: int, progress: bool = True):
    """A non-target objective's labelled pairs with every other objective's margin (margin_specs(spec,
    objective)), cached as data/pairs-<objective>-margins beside its plain DPO pairs."""
    return prepare_pairs(root, spec, model, tokenizer, dataset, objective, margin_specs(spec, objective), max_length,
                         progress=progress, store=f"{objective}-margins")


def pairs_key(spec: fam.FamilySpec, dataset: PreferenceDataset, objective: str, margins: list[MarginSpec],
              max_length: int) -> dict:
    """What the stored pairs of an objective were computed from; a cache with another key is stale."""
    labels = hashlib.sha256(json.dumps([r.preferences.get(objective) for r in dataset.rows]).encode()).hexdigest()
    return {"objective": objective, "max_length": max_length, "beta": spec.beta,
            "margins": [vars(m) for m in margins], "n_rows": len(dataset.rows), "labels": labels[:16],
            "label_scale": spec.label_scale(objective)}


def cached_pairs(root: Path, spec: fam.FamilySpec, dataset: PreferenceDataset, objective: str,
                 margins: list[MarginSpec], max_length: int, store: str | None = None):
    """The stored pairs of an objective (in data/pairs-<store or objective>) if they were computed from
    these inputs, else None."""
    key = json.loads(json.dumps(pairs_key(spec, dataset, objective, margins, max_length)))
    stored = fam.read_pairs(root, store or objective)
    if stored is not None and all(stored[0].get(k) == v for k, v in key.items()):
        return stored[1]
    return None


def prepare_pairs(root: Path, spec: fam.FamilySpec, model, tokenizer, dataset: PreferenceDataset, objective: str,
                  margins: list[MarginSpec], max_length: int, batch_size: int = 8, progress: bool = True,
                  store: str | None = None) -> list[dict]:
    """Tokenize D_objective and precompute its reference and margin columns, once; cached in
    data/pairs-<store or objective>.

    Returns a datasets.Dataset of pairs with the stored columns (the same rows every weighting reads).
    """
    cached = cached_pairs(root, spec, dataset, objective, margins, max_length, store)
    if cached is not None:
        return cached
    pairs = dataset.pairs(objective)
    examples, dropped = tokenize_pairs(pairs, tokenizer, max_length)
    if not examples:
        raise ValueError(f"all {len(pairs)} pairs for {objective!r} are longer than max_length={max_length} "
                         "tokens (or none is labelled); raise --max-length")
    texts = {p.row: p for p in pairs}
    for ex in examples:
        p = texts[ex["row"]]
        ex.update(prompt=p.prompt, chosen=p.chosen, rejected=p.rejected)
    examples = precompute_columns(model, examples, tokenizer.pad_token_id, margins, spec.beta, batch_size, progress,
                                  known_reference=stored_reference(root, spec, max_length))
    scale = spec.label_scale(objective)
    if scale is not None:  # Bradley-Terry labels of a known reward: train on the expected loss over the draw
        for ex in examples:
            ex["chosen_probs"] = chosen_probability(dataset.rows[ex["row"]], objective, scale)
    key = pairs_key(spec, dataset, objective, margins, max_length)
    fam.write_pairs(root, store or objective, {**key, "dropped": dropped, "kept": len(examples),
                                      **margin_summary(examples)}, examples)
    return fam.read_pairs(root, store or objective)[1]


def stored_reference(root: Path, spec: fam.FamilySpec, max_length: int) -> dict:
    """(row, prompt, response) -> reference log-prob from the pairs already stored for any objective of the
    family at this max_length: each objective's pairs are the same responses, labelled differently."""
    known = {}
    for o in spec.objective_names:
        stored = fam.read_pairs(root, o)
        if stored is None or stored[0].get("max_length") != max_length or "chosen" not in stored[1].column_names:
            continue
        for ex in stored[1]:
            known[(ex["row"], ex["prompt"], ex["chosen"])] = ex["reference_chosen_logps"]
            known[(ex["row"], ex["prompt"], ex["rejected"])] = ex["reference_rejected_logps"]
    return known


def train_point(root: Path, spec: fam.FamilySpec, model, train_examples, weights, cfg: TrainConfig, point_id: str,
                kind: str = "modpo", job_id: str | None = None, extra_meta: dict | None = None, final: bool = True,
                labels_from: str | None = None):
    """Train one adapter through a job folder and publish it. Returns (meta, model).

    Only one process may train a given adapter at a time (family.training_claim); a second one is
    refused before it writes anything. final=False leaves the job running (its caller evaluates the
    point next and says done only then). labels_from: train on that objective's labels (loss_plan).
    """
    job_id = job_id or point_id
    main = is_main_process()  # under accelerate launch, only rank 0 claims, reports and writes the family
    with fam.training_claim(root, point_id) if main else contextlib.nullcontext():
        if fam.adapter_dir(root, point_id).exists():
            raise fam.FamilyError(f"adapter {point_id!r} already exists in {root}; pick another weighting or delete it")
        if main:
            fam.remove_partial(root, job_id)
            fam.write_status(root, job_id, state="running", kind=kind, adapter=point_id, step=0, phase="training",
                             pid=os.getpid(), pid_start=fam.process_start(os.getpid()),
                             created=time.strftime("%Y-%m-%dT%H:%M:%S"), started=time.time())
        out = fam.job_dir(root, job_id) / "adapter"

        def report(step, total, curve):
            fam.write_status(root, job_id, step=step, total_steps=total, loss_curve=curve)

        try:
            objective, ordered = ((extra_meta or {}).get("objective"), [1.0]) if kind == "dpo-margin" \
                else loss_plan(spec.objective_names, spec.target, weights, labels_from)
            record, model = train_adapter(model, train_examples, ordered, cfg, out, peft_name(point_id),
                                          report if main else None,
                                          work_dir=fam.job_dir(root, job_id) / "trainer", mixture=objective == EVERY)
            meta = {"id": point_id, "kind": kind, "base_model": spec.base_model,
                    "weights": None if kind == "dpo-margin" else dict(zip(spec.objective_names, map(float, weights))),
                    "objective": objective,
                    "seed": cfg.seed, **record, "versions": library_versions(), **(extra_meta or {})}
            if main:
                record_base_model(out, spec.base_model)
                fam.write_meta(out, meta)
                fam.publish_adapter(root, job_id, point_id)
                fam.write_status(root, job_id, step=record["steps"],  # final: a sweep evaluates its points later
                                 **({"state": "done", "phase": "trained", "finished": time.time()} if final else {}))
        except BaseException as e:
            if main:
                fam.remove_partial(root, job_id)
                fam.write_status(root, job_id, state="failed", error=f"{type(e).__name__}: {e}", finished=time.time())
            raise
    return meta, model


def run_sweep(root: Path, spec: fam.FamilySpec, model, tokenizer, dataset: PreferenceDataset,
              grid: list[tuple[float, ...]], cfg: TrainConfig, eval_prompts: list[str] | None,
              eval_settings: EvalSettings | None = None, margin_cfg: TrainConfig | None = None,
              log=print, labels_from: str | None = None, force_eval: bool = False) -> dict:
    """Train (and evaluate) the whole family; finished adapters are skipped. Returns stage wall times.
    labels_from: the labels the interior weightings train on (weights.loss_plan; EVERY: every objective's).
    force_eval: evaluate every point again, not only those without an evaluation."""
    root = Path(root)
    spec.notes.setdefault("tokenizer", tokenizer_fingerprint(tokenizer))
    spec.notes.setdefault("train_config", cfg.to_json())  # the recipe new points inherit (family.family_recipe)
    if labels_from is not None:  # new points follow it too (family.family_labels_from)
        spec.notes["labels_from"] = labels_from
    fam.write_family(root, spec)
    if not fam.preferences_file(root).exists():
        write_jsonl(dataset, fam.preferences_file(root))
    times = {}
    # 1. Margin models: DPO on each implicit-margin objective.
    for m in margin_specs(spec):
        if m.kind != "implicit":
            continue
        point_id = m.adapter
        if fam.adapter_dir(root, point_id).exists():
            log(f"[skip] {point_id} exists")
        else:
            t = time.perf_counter()
            pairs = prepare_pairs(root, spec, model, tokenizer, dataset, m.objective, [], cfg.max_length)
            _, model = train_point(root, spec, model, pairs, None, margin_cfg or cfg, point_id, "dpo-margin",
                                   extra_meta={"objective": m.objective})
            model.delete_adapter(peft_name(point_id))
            times[f"margin {m.objective}"] = time.perf_counter() - t
            log(f"[done] {point_id} in {times[f'margin {m.objective}']:.0f}s")
        model = attach_adapters(model, {peft_name(point_id): fam.adapter_dir(root, point_id)})
    # 2. The precompute, once per objective whose labels the weightings train on (the target's pairs are
    # shared by every weighting; a vertex of another objective is DPO on its own labels). Timed when it runs.
    endpoint = tuple(1.0 if o.name == spec.target else 0.0 for o in spec.objectives)
    todo = [w for w in [endpoint] + [tuple(w) for w in grid if tuple(w) != endpoint]
            if not fam.adapter_dir(root, weights_id(w)).exists()]
    plans = {tuple(w): pairs_plan(spec, w, labels_from) for w in todo}
    pairs = {}  # where the pairs are stored -> the pairs
    for plan in plans.values():
        where = plan.store or plan.labelled
        if where in pairs:
            continue
        pairs[where] = cached_pairs(root, spec, dataset, plan.labelled, plan.margins, cfg.max_length, plan.store)
        if pairs[where] is None:
            t = time.perf_counter()
            pairs[where] = prepare_pairs(root, spec, model, tokenizer, dataset, plan.labelled, plan.margins,
                                         cfg.max_length, store=plan.store)
            times["precompute" if where == spec.target else f"precompute {where}"] = time.perf_counter() - t
    # 3. The DPO endpoint on the target, then the other weightings.
    for weights in [endpoint] + [tuple(w) for w in grid if tuple(w) != endpoint]:
        point_id = weights_id(weights)
        if fam.adapter_dir(root, point_id).exists():
            log(f"[skip] {point_id} exists")
            continue
        t = time.perf_counter()
        plan = plans[tuple(weights)]
        _, model = train_point(root, spec, model, pairs[plan.store or plan.labelled], weights, cfg, point_id,
                               labels_from=labels_from)
        model.delete_adapter(peft_name(point_id))
        times[f"train {point_id}"] = time.perf_counter() - t
        log(f"[done] {point_id} in {times[f'train {point_id}']:.0f}s")
    if is_main_process():
        fam.write_family(root, spec)
    # 4. Evaluation of everything not yet evaluated.
    if eval_prompts and is_main_process():
        t = time.perf_counter()
        if evaluate_missing(root, model, tokenizer, eval_prompts, eval_settings or EvalSettings(), log, force_eval):
            times["evaluate"] = time.perf_counter() - t  # a resumed run that evaluated nothing keeps the old time
    return times


def train_family_conditioned(root: Path, conditioned_id: str, cfg: TrainConfig, eps: float, log=print,
                             loss_scale: str = "none", per_objective: int = 1, labels: str = "target") -> dict:
    """One weight-conditioned adapter (conditioned.py) for the family at root, trained on its stored target
    pairs (no new precompute; with labels "largest", every objective's pairs with the others' margins, the
    reference log-probs reused) and saved as conditioned/<id> (atomic; refused when there). Returns its meta."""
    from .conditioned import ConditionedConfig, conditioned_state, train_conditioned
    from .models import load_base

    spec = fam.read_family(root)
    cid = fam.check_id(conditioned_id)
    if any(m.get("kind") == "implicit" for m in spec.margins.values()):
        raise ValueError(f"{root}: the conditioned adapter needs explicit margins for every non-target objective "
                         "(an implicit margin needs its margin model loaded in the same forward pass)")
    stored = fam.read_pairs(root, spec.target)
    if stored is None:
        raise ValueError(f"{root}: no precomputed pairs for {spec.target!r}; run `python -m modpo sweep` first")
    ccfg = ConditionedConfig(r=cfg.lora_r, alpha=cfg.lora_alpha, target_modules=tuple(cfg.target_modules),
                             n_objectives=len(spec.objectives), per_objective=per_objective, eps=eps,
                             loss_scale=loss_scale, labels=labels)
    model, tokenizer = load_base(spec.base_model)
    reward_order = None
    if labels == "all":  # the target's pairs with every objective's reward (family order; the adapter's: target first)
        dataset = load_jsonl(fam.preferences_file(root))
        pairs = prepare_pairs(root, spec, model, tokenizer, dataset, spec.target, margin_specs(spec, EVERY),
                              cfg.max_length, progress=False, store=f"{EVERY}-margins")
        reward_order = [spec.objective_names.index(o) for o in reorder(spec.objective_names, spec.target,
                                                                       spec.objective_names)]
    elif labels == "target":
        pairs = stored[1]
    else:
        pairs = pairs_of_every_objective(root, spec, model, tokenizer, stored[1], cfg.max_length)
    work = fam.job_dir(root, peft_name(f"conditioned-{cid}"))
    record = train_conditioned(model, pairs, cfg, ccfg, work / "trainer", reward_order=reward_order)
    order = reorder(spec.objective_names, spec.target, spec.objective_names)
    meta = {"objectives": spec.objective_names, "weight_order": order, "conditioning": record["conditioning"],
            "steps": record["steps"], "wall_time_s": record["wall_time_s"], "loss_curve": record["loss_curve"],
            "config": record["config"], "train_pairs": record["train_pairs"]}
    target = fam.write_conditioned(root, cid, conditioned_state(model), meta)
    log(f"trained {target} in {record['wall_time_s']:.0f}s ({record['steps']} steps)")
    return meta


def pairs_of_every_objective(root: Path, spec: fam.FamilySpec, model, tokenizer, target_pairs, max_length: int):
    """Every objective's labelled pairs with the other objectives' margins (margin_specs(spec, k); the
    target's are its stored pairs), each row's `loss_order` giving the loss's order (its labels' objective
    first, then its margin columns) as positions in the conditioned adapter's weighting (target first)."""
    import datasets

    if not fam.preferences_file(root).exists():
        raise ValueError(f"{root}: training on every objective's labels needs the family's "
                         f"{fam.preferences_file(root).name}")
    dataset = load_jsonl(fam.preferences_file(root))
    names = spec.objective_names
    adapter_order = reorder(names, spec.target, names)
    parts = []
    for k in names:
        pairs = target_pairs if k == spec.target else margined_pairs(root, spec, model, tokenizer, dataset, k,
                                                                     max_length, progress=False)
        loss_order = [adapter_order.index(j) for j in reorder(names, k, names)]
        parts.append(pairs.add_column("loss_order", [loss_order] * len(pairs)))
    return datasets.concatenate_datasets(parts)


def publish_conditioned_points(root: Path, conditioned_id: str) -> list[str]:
    """The conditioned adapter's points: its grid over the simplex it was trained on and every trained
    weighting it covers (for the audit), added as points that store no weights; returns the new ids."""
    from .conditioned import grid_weightings, publish_points
    from .front import EXACT_KINDS

    family = fam.load_family(root)
    spec = family.spec
    tensors, meta = fam.read_conditioned(root, conditioned_id)
    trained = [[p.weights[o] for o in spec.objective_names] for p in family.points
               if p.kind in EXACT_KINDS and p.weights]
    return publish_points(root, conditioned_id, tensors, meta,
                          grid_weightings(spec.objective_names, spec.target, meta["conditioning"]["eps"], trained))


def evaluate_missing(root: Path, model, tokenizer, prompts: list[str], settings: EvalSettings,
                     log=print, force: bool = False, on_progress=None) -> list[str]:
    """Evaluate the base model and every adapter lacking eval.json (or all, with force).
    on_progress(answers_done, answers_total) follows the generation."""
    family = fam.load_family(root)
    spec = family.spec
    for problem in family.errors:
        log(f"warning: {problem}")
    if "base" not in [p.id for p in family.points]:
        fam.ensure_base_point(root, spec.base_model)
        family = fam.load_family(root)
    todo = [p for p in family.points if force or p.eval is None]
    if not todo:
        return []
    for p in list(todo):  # one unloadable adapter never stops the others
        try:
            model = attach_adapters(model, adapters_of(family, [p]))
        except (ValueError, KeyError) as e:
            log(f"warning: skipped {p.id}: {e}")
            todo.remove(p)
    log(f"evaluating {len(todo)} policies on {len(prompts)} prompts")
    results = evaluate_points(model, tokenizer, spec, prompts, {p.id: policy_of(p) for p in todo}, settings,
                              on_progress)
    for p in todo:  # p.path is base/ or adapters/<checked id> as load_family found it under root; atomic write
        fam.write_eval(p.path, results[p.id])  # p.path: a checked id load_family found under root; atomic
    fam.write_data_file(root, "eval_prompts.json", {"prompts": prompts})
    return [p.id for p in todo]


