"""The shipped demo family (checkpoints/demo): a real front, complete records, loadable adapters.

The acceptance checks of the demo issue, on the committed family as it is (no retraining here).
"""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

from modpo import family as fam
from modpo.front import front_table, gains_over_base

DEMO = Path(__file__).resolve().parent.parent / "checkpoints" / "demo"


@pytest.fixture(scope="module")
def demo():
    assert (DEMO / "family.json").exists(), "checkpoints/demo is missing: build it with `python -m modpo demo`"
    family = fam.load_family(DEMO)
    assert not family.errors, family.errors
    return family, front_table(family)


def modpo_rows(table):
    return table[(table["kind"] == "modpo") & table["evaluated"]]


OBJECTIVES = ["relevance", "sentiment", "brevity"]


def test_family_json_records_what_it_is(demo):
    family, _ = demo
    spec = family.spec
    assert spec.base_model == "smollm2-135m-instruct" and spec.beta == 1.0
    assert [(o.name, o.direction, o.scorer) for o in spec.objectives] == [(o, "maximize", o) for o in OBJECTIVES]
    assert spec.data["rows"] >= 250 and spec.data["train_prompts"] >= 300 and spec.data["eval_prompts"] >= 64
    assert spec.target == "relevance"
    assert spec.labels["kind"] == "bradley-terry" and spec.labels["nats_per_sd"] > 0
    for o in ("sentiment", "brevity"):  # the margins are the labels' reward: w means what it says
        assert spec.margins[o] == {"kind": "explicit", "scorer": o, "scale": spec.labels["reward_scales"][o]}
    clash = {tuple(c["objectives"]): c for c in spec.notes["conflict"]}
    assert clash[("sentiment", "brevity")]["pearson"] < 0 and clash[("sentiment", "brevity")]["n_responses"] >= 500
    assert set(clash) == {("relevance", "sentiment"), ("relevance", "brevity"), ("sentiment", "brevity")}
    assert spec.notes["train_config"]["beta"] == spec.beta and spec.notes["build_times_s"]["train w-1.00-0.00-0.00"] > 0
    for png in ("front.png", "parallel.png"):
        assert (DEMO / png).stat().st_size > 10_000
    assert (DEMO / "data" / "preferences.jsonl").exists()


def test_eight_weightings_spread_over_the_simplex_with_every_vertex(demo):
    _, table = demo
    rows = modpo_rows(table)
    weights = rows[[f"w_{o}" for o in OBJECTIVES]].to_numpy()
    assert len(rows) >= 8
    for i, o in enumerate(OBJECTIVES):
        assert any(np.allclose(w, np.eye(3)[i]) for w in weights), f"no trained vertex for {o}"
    assert (weights > 0).all(axis=1).sum() >= 2, "points inside the simplex, not only on its edges"
    assert int(table[table["kind"] != "base"]["on_front"].sum()) >= 4


def most_weight_on(table, objective):
    rows = modpo_rows(table)
    return rows.loc[rows[f"w_{objective}"].idxmax()]


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_the_point_with_most_weight_on_an_objective_beats_the_base_by_3_standard_errors(demo, objective):
    _, table = demo
    best, base = most_weight_on(table, objective), table.set_index("id").loc["base"]
    gap = best[objective] - base[objective]
    se = np.hypot(best[f"{objective}_stderr"], base[f"{objective}_stderr"])
    assert gap > 3 * se, f"{best['id']} gains only {gap / se:.1f} standard errors over the base on {objective}"


def test_paired_by_prompt_the_point_with_most_weight_on_each_objective_beats_the_base_by_3_standard_errors(demo):
    """The gains above with the standard error of the per-prompt difference (front.paired_gain): the point and
    the base model answered the same 288 prompts, whose difficulty both share. Counted apart (above) the
    relevance end gains 4.2 se; paired, 6.3."""
    family, table = demo
    gains = gains_over_base(family, table).set_index("id")
    for objective in OBJECTIVES:
        best = most_weight_on(table, objective)["id"]
        z = gains.loc[best, f"{objective}_z_paired"]
        assert z > 3, f"{best} gains {z:.1f} paired standard errors over the base on {objective}"
        assert z > gains.loc[best, f"{objective}_z"], "pairing by prompt should shrink the standard error here"


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_the_two_ends_of_each_objective_differ_by_5_standard_errors(demo, objective):
    _, table = demo
    rows = modpo_rows(table)
    hi = most_weight_on(table, objective)
    low = rows[rows[f"w_{objective}"] == rows[f"w_{objective}"].min()]
    for _, lo in low.iterrows():  # every point without weight on the objective
        gap = hi[objective] - lo[objective]
        se = np.hypot(hi[f"{objective}_stderr"], lo[f"{objective}_stderr"])
        assert gap > 5 * se, f"{hi['id']} and {lo['id']} differ by only {gap / se:.1f} standard errors on {objective}"


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_each_score_rises_with_its_weight(demo, objective):
    rows = modpo_rows(demo[1])
    rho = spearmanr(rows[f"w_{objective}"], rows[objective])[0]
    assert rho >= 0.8, f"score of {objective} does not rise with its weight (Spearman {rho:.2f})"


def test_a_resumed_demo_records_the_evaluation_of_every_point_not_only_its_new_ones():
    from modpo.demo import sweep_times
    shares = [163.95] * 9 + [195.33]  # eval.json wall_time_s: nine points from the first pass, one new
    resumed = sweep_times({"evaluate": 1475.6, "load": 0.7}, {"evaluate": 195.3, "load": 1.2}, False, shares)
    assert resumed == {"evaluate": pytest.approx(1670.88), "load": 1.2}  # the load ran again: this run's time
    # two points retrained replace their old evaluations: the sum counts each point once, as a fresh build would
    assert sweep_times({"evaluate": 1670.9}, {"evaluate": 411.2}, False, [163.95] * 8 + [195.33, 205.6, 205.6]
                       )["evaluate"] == pytest.approx(163.95 * 8 + 195.33 + 411.2)
    assert sweep_times({"evaluate": 5112.1}, {"evaluate": 4000.0}, True, shares) == {"evaluate": 4000.0}
    assert sweep_times({}, {"evaluate": 900.0}, False, shares) == {"evaluate": 900.0}  # a first build: as it ran
    assert sweep_times({"evaluate": 9.0}, {"train w-0.00-0.50-0.50": 2.0}, False, shares) == \
        {"train w-0.00-0.50-0.50": 2.0}
    assert sweep_times({"evaluate": 9.0}, {"evaluate": 3.0}, False, ["rm -rf", None, True]) == {"evaluate": 3.0}
    assert sweep_times([], {"evaluate": 3.0}, False, shares) == {"evaluate": 3.0}  # a stranger's record


def test_the_recorded_coherence_check_passes_for_every_point(demo):
    family, _ = demo
    report = family.spec.notes["coherence"]
    assert report["prompts"]["n"] >= 24
    points = report["points"]
    assert set(points) == {p.id for p in family.points}
    for pid, r in points.items():
        assert r["relevance_vs_base"] >= 0.85, f"{pid}: relevance {r['relevance_vs_base']:.2f} x the base model's"
        assert r["bad"] <= 3 / 24, f"{pid}: {r['bad']:.0%} of its answers are degenerate or off topic"


def test_at_most_10_percent_bad_answers_per_point(demo):
    """Met since the points answer with no token 4-gram twice (demo.DEMO_EVAL_NO_REPEAT_NGRAM); without the
    ban the brevity vertex looped on 3 of the 24 prompts (12.5%)."""
    for pid, r in demo[0].spec.notes["coherence"]["points"].items():
        assert r["bad"] <= 0.10, f"{pid}: {r['bad']:.0%} of its answers are degenerate or off topic"


@pytest.mark.slow
def test_the_coherence_check_rerun_on_the_shipped_prompts_gives_the_recorded_numbers(demo):
    from modpo.coherence import check_family, default_prompts
    from modpo.evaluate import adapters_of
    from modpo.models import attach_adapters, load_base
    family, _ = demo
    model, tokenizer = load_base(family.spec.base_model)
    model = attach_adapters(model, adapters_of(family, family.points))
    report = check_family(model, tokenizer, family, default_prompts())
    for pid, recorded in family.spec.notes["coherence"]["points"].items():
        assert report[pid]["relevance"] == pytest.approx(recorded["relevance"], abs=1e-3)
        assert report[pid]["bad"] == pytest.approx(recorded["bad"], abs=1 / 24 + 1e-9)


def test_every_adapter_records_its_build(demo):
    family, _ = demo
    for p in family.points:
        assert p.eval is not None and p.eval["prompt_set"]["n"] >= 64
        assert "demo_build_times_s" in p.meta
        if p.kind == "modpo":
            assert p.meta["steps"] > 0 and p.meta["wall_time_s"] > 0 and p.meta["loss_curve"]
            assert (p.path / "adapter_model.safetensors").stat().st_size < 8 * 2**20


@pytest.mark.slow
def test_every_adapter_loads_with_plain_peft_and_generates(demo):
    import torch
    from peft import PeftModel

    from modpo.data import format_prompt
    from modpo.evaluate import adapter_folder
    from modpo.models import load_base
    family, _ = demo
    base, tokenizer = load_base("smollm2-135m-instruct")
    ids = tokenizer(format_prompt(tokenizer, "Name a fruit."), return_tensors="pt")
    with torch.no_grad():
        base_out = base.generate(**ids, max_new_tokens=8, do_sample=False)
    for p in family.points:
        if p.kind == "base":
            continue
        model = PeftModel.from_pretrained(base, str(adapter_folder(family, p)))  # a conditioned point: its export
        with torch.no_grad():
            out = model.generate(**ids, max_new_tokens=8, do_sample=False)
            adapted = model(**ids).logits
            with model.disable_adapter():
                plain = model(**ids).logits
        assert out.shape[1] > ids["input_ids"].shape[1]
        assert not torch.allclose(adapted, plain), f"{p.id} does not change the model"
        base = model.unload()
    assert base_out.shape[1] > ids["input_ids"].shape[1]


def test_the_held_out_prompts_are_apart_from_the_train_prompts(demo):
    """The demo's evaluation prompts (the ones its adapters are scored on) are its recorded held-out set:
    none is a train prompt, none repeats, and they are what the family was evaluated on."""
    from modpo.demo import demo_prompts
    prompts = demo_prompts()
    held_out, train = prompts["eval"], set(prompts["train"])
    assert len(set(held_out)) == len(held_out) and not set(held_out) & train
    family, _ = demo
    assert fam.read_eval_prompts(DEMO) == held_out and family.spec.data["eval_prompts"] == len(held_out) == 288


def test_every_point_saves_its_answer_to_every_held_out_prompt(demo):
    """The votes' pool (votes.answer_pool) and the Compare page's saved answers: each evaluation keeps all
    288 answers with their scores, and they are the answers its means were computed from."""
    family, _ = demo
    held_out = fam.read_eval_prompts(DEMO)
    for p in family.points:
        samples = p.eval["samples"]
        assert [s["prompt"] for s in samples] == held_out, f"{p.id} saved {len(samples)} answers"
        for o in OBJECTIVES:
            mean = np.mean([s["scores"][o] for s in samples])
            assert mean == pytest.approx(p.eval["objectives"][o]["mean"], abs=1e-9), (p.id, o)


def test_the_demo_ships_one_conditioned_adapter_evaluated_on_its_grid_and_audited(demo):
    """Issue 14 on the demo: the build trains one weight-conditioned adapter on the family's own pairs for
    as many steps as one exact adapter, adds it as points on its 15-point grid and at the 7 trained weightings
    it covers (meta and eval only: their weights come from the one adapter), evaluates them like every
    point, and the audit compares it with every exact adapter it covers."""
    from modpo.front import conditioned_audit
    family, table = demo
    tensors, meta = fam.read_conditioned(DEMO, "conditioned")
    assert meta["steps"] == family.spec.notes["train_config"]["max_steps"]
    cond = [p for p in family.points if p.kind == "conditioned"]
    assert len(cond) >= 15 and all(p.eval and p.eval["prompt_set"]["n"] == len(fam.read_eval_prompts(DEMO))
                                   for p in cond)
    assert not any((p.path / "adapter_model.safetensors").exists() for p in cond), "one adapter for the whole front"
    stored = [f for p in cond for f in p.path.iterdir() if f.name != "eval.json"]  # eval.json: its 288 answers
    assert {f.name for f in stored} == {"meta.json"} and sum(f.stat().st_size for f in stored) < 2**17
    rows, summary = conditioned_audit(family, table)
    covered = rows[rows["conditioned"] != "not covered"]
    assert len(covered) == 7 and set(rows[rows["conditioned"] == "not covered"]["exact"]) == {
        "w-0.00-1.00-0.00", "w-0.00-0.00-1.00", "w-0.00-0.50-0.50"}, "w_relevance = 0 is outside its training"
    assert covered[[f"{o}_se_apart" for o in OBJECTIVES]].notna().all().all()
    assert summary["hypervolume_conditioned"] > 0 and summary["conditioned_points"] == len(cond)


def test_the_conditioned_front_has_at_least_95_percent_of_the_exact_familys_hypervolume(demo):
    """Issue 14's target on the shipped demo, with one reference point over both sets (front.conditioned_audit):
    the 21 conditioned points against the 10 exact adapters, the three on the face w_relevance = 0 it does not
    cover included. 0.973 x on the 288 held-out prompts (0.93 x with the sentiment-brevity midpoint but the two
    0.2 points still on relevance's labels, 0.999 x without the midpoint), and the ratio is noisy (the interval
    below)."""
    from modpo.front import conditioned_audit
    family, table = demo
    _, summary = conditioned_audit(family, table)
    assert summary["ratio"] >= 0.95, f"the conditioned points have {summary['ratio']:.2f} x the exact hypervolume"


def test_the_hypervolume_ratio_resampled_over_the_held_out_prompts_is_wide(demo):
    """front.conditioned_hypervolume_interval: how sure the 0.973 x above is. Resampling the 288 prompts
    (one draw for every point) gives 0.79-1.30 (90%, median 1.02): the conditioned front is about as large as
    the exact family's, and the held-out set cannot tell them apart more closely."""
    from modpo.front import conditioned_audit, conditioned_hypervolume_interval
    family, table = demo
    ratio = conditioned_audit(family, table)[1]["ratio"]
    interval = conditioned_hypervolume_interval(family, table)
    assert interval["prompts"] == 288 and interval["low"] < ratio < interval["high"]
    assert interval["low"] < 0.95 < interval["high"] and interval["high"] - interval["low"] > 0.3


def test_the_conditioned_adapter_follows_the_sentiment_weight_and_stays_near_the_exact_adapters(demo):
    """What four singular values per objective bought on the demo (demo.CONDITIONED_PER_OBJECTIVE): over its
    21 points sentiment rises with its weight (Spearman >= 0.8; Panacea's one value per objective gave
    0.51), and at 3 of the 7 covered trained weightings the conditioned adapter is within 2 standard errors
    of the exact adapter on every objective. It trains on relevance's labels at every weighting; since
    2026-12-02 the exact (0.2, 0.6, 0.2) and (0.2, 0.2, 0.6) train on their heaviest objective's (demo.DEMO_LABELS),
    and the conditioned adapter is 3.5 and 4.6 se above them on relevance, the divisor's overshoot they lost
    (4 of 7 before; answered without the rule against loops 5 of 7, on the first 144 held-out prompts 6 of 7)."""
    from scipy.stats import spearmanr

    from modpo.demo import CONDITIONED_PER_OBJECTIVE
    from modpo.front import conditioned_audit
    family, table = demo
    _, meta = fam.read_conditioned(DEMO, "conditioned")
    assert meta["conditioning"]["per_objective"] == CONDITIONED_PER_OBJECTIVE == 4
    cond = table[table["kind"] == "conditioned"]
    assert spearmanr(cond["w_sentiment"], cond["sentiment"])[0] >= 0.8
    rows, _ = conditioned_audit(family, table)
    covered = rows[rows["conditioned"] != "not covered"]
    within = (covered[[f"{o}_se_apart" for o in OBJECTIVES]].abs() <= 2).all(axis=1)
    assert within.sum() >= 3, covered


def test_resuming_the_demo_with_another_recipe_is_refused(demo):
    from modpo.demo import SAMPLES_PER_PROMPT, check_same_recipe
    spec = fam.read_family(DEMO)
    check_same_recipe(spec, SAMPLES_PER_PROMPT, None, None)  # the shipped recipe resumes
    with pytest.raises(ValueError, match=r"training seed 0 \(asked 1\)"):
        check_same_recipe(spec, SAMPLES_PER_PROMPT, None, 1)
    with pytest.raises(ValueError, match=r"samples per prompt 4 \(asked 8\).*matched pairs \{\} \(asked"):
        check_same_recipe(spec, 8, {"relevance": ("brevity", 5.0)}, None)
    with pytest.raises(ValueError, match=r"response cap 48 \(asked 96\)"):
        check_same_recipe(spec, SAMPLES_PER_PROMPT, None, None, 96)
    check_same_recipe(spec, SAMPLES_PER_PROMPT, None, None, 48, 1)
    with pytest.raises(ValueError, match=r"trim rule 1 \(asked 2\)"):
        check_same_recipe(spec, SAMPLES_PER_PROMPT, None, None, 48, 2)
    check_same_recipe(spec, SAMPLES_PER_PROMPT, None, None, 48, 1, 0)
    with pytest.raises(ValueError, match=r"no-repeat n-gram 0 \(asked 4\)"):
        check_same_recipe(spec, SAMPLES_PER_PROMPT, None, None, 48, 1, 4)


def test_the_demo_is_measured_by_the_trim_rule_its_pairs_were_trimmed_with(demo, tmp_path):
    """The shipped pairs were trimmed by rule 1 (before list numbers stopped counting as sentence ends): a
    resumed build, the Compare page and new points measure by rule 1 too, so the front stays comparable; a
    family that records rule 2 is measured by it; a stranger's rule is refused."""
    from modpo.config import EvalSettings
    from modpo.demo import (
        DEMO_EVAL_NO_REPEAT_NGRAM,
        DEMO_NO_REPEAT_NGRAM,
        DEMO_TRIM_RULE,
        recorded_no_repeat_ngram,
        recorded_trim_rule,
    )
    family, _ = demo
    assert recorded_no_repeat_ngram(DEMO) == DEMO_NO_REPEAT_NGRAM == 0  # its pairs were sampled with no ban
    assert recorded_trim_rule(DEMO) == DEMO_TRIM_RULE == 1  # a build from nothing trims as the shipped one did
    assert EvalSettings.from_recorded(fam.recorded_eval_settings(family)).trim_rule == 1  # new points, coherence
    # every point answers with the ban (evaluation, coherence, the Compare page), measured alike
    assert {p.eval["settings"]["no_repeat_ngram"] for p in family.points} == {DEMO_EVAL_NO_REPEAT_NGRAM} == {4}
    assert EvalSettings.answer_rules_of(fam.recorded_eval_settings(family)) == {
        "trim_capped": True, "trim_rule": 1, "no_repeat_ngram": DEMO_EVAL_NO_REPEAT_NGRAM}
    spec = json.loads((DEMO / "family.json").read_text())
    for key, recorded, value, outcome in [
            ("trim_rule", recorded_trim_rule, 2, 2),
            ("trim_rule", recorded_trim_rule, "rm -rf", "family.json records trim rule 'rm -rf', not one of"),
            ("no_repeat_ngram", recorded_no_repeat_ngram, 4, 4),
            ("no_repeat_ngram", recorded_no_repeat_ngram, "rm -rf", "family.json records no_repeat_ngram must be 0"),
            ("no_repeat_ngram", recorded_no_repeat_ngram, 1, "family.json records no_repeat_ngram must be 0")]:
        spec["data"]["sampling"][key] = value
        (tmp_path / "family.json").write_text(json.dumps(spec))
        if isinstance(outcome, str):
            with pytest.raises(ValueError, match=outcome):
                recorded(tmp_path)
        else:
            assert recorded(tmp_path) == outcome
        spec["data"]["sampling"].pop(key)


def test_resuming_a_demo_whose_points_learned_from_other_labels_is_refused(demo, tmp_path, monkeypatch):
    # the shipped family's points learned from the labels DEMO_LABELS gives them: it resumes
    from modpo import demo as demo_module
    from modpo.demo import DEMO_GRID, check_same_labels
    check_same_labels(DEMO, DEMO_GRID + [(1.0, 0.0, 0.0)])
    # a recipe on every objective's labels would mix recipes with interior points that learned from relevance's
    # alone: refused, naming them
    monkeypatch.setattr(demo_module, "DEMO_LABELS", "all")
    root = tmp_path / "demo"
    for point_id, objective in [("w-0.20-0.60-0.20", "relevance"), ("w-0.00-1.00-0.00", "sentiment"),
                                ("w-0.50-0.00-0.50", "all"), ("w-1.00-0.00-0.00", "relevance")]:
        directory = fam.adapter_dir(root, point_id)
        directory.mkdir(parents=True)
        fam.write_meta(directory, {"id": point_id, "kind": "modpo", "objective": objective})
    with pytest.raises(ValueError, match=r"trained on other labels than this recipe's: w-0\.20-0\.60-0\.20 "
                                         r"\('relevance''s labels, the recipe now 'all'\); resuming would mix"):
        check_same_labels(root, DEMO_GRID + [(1.0, 0.0, 0.0)])
    shutil.rmtree(fam.adapter_dir(root, "w-0.20-0.60-0.20"))  # deleted, it is retrained: the resume goes on
    check_same_labels(root, DEMO_GRID + [(1.0, 0.0, 0.0)])


def test_a_demo_resumed_on_a_grown_held_out_set_evaluates_every_point_again(checkpoints, tiny):
    """demo.reset_stale_evaluation on a real (tiny) family: an unchanged set changes nothing; a grown one is
    recorded, every stored evaluation then reads as stale, and the next evaluation scores every point on it."""
    from modpo.demo import reset_stale_evaluation
    from modpo.evaluate import EvalSettings
    from modpo.sweep import evaluate_missing

    root = checkpoints / "tiny"
    old, logs = fam.read_eval_prompts(root), []
    assert not reset_stale_evaluation(root, old, logs.append) and not logs
    assert all(p.eval for p in fam.load_family(root).points)
    grown = old + ["tell me about boats", "tell me about clocks"]
    assert reset_stale_evaluation(root, grown, logs.append)
    assert logs == [f"[evaluate] the held-out prompts changed ({len(old)} -> {len(grown)}): every point is "
                    "evaluated again"]
    family = fam.load_family(root)
    assert fam.read_eval_prompts(root) == grown
    assert all(p.eval is None for p in family.points) and len(family.errors) == len(family.points)
    model, tokenizer = tiny
    done = evaluate_missing(root, model, tokenizer, grown, EvalSettings(max_new_tokens=24, batch_size=8),
                            log=logs.append)
    family = fam.load_family(root)
    assert sorted(done) == sorted(p.id for p in family.points) and not family.errors
    assert all([s["prompt"] for s in p.eval["samples"]] == grown for p in family.points)


def test_a_demo_resumed_with_other_evaluation_settings_evaluates_every_point_again(checkpoints, tiny):
    """demo.reset_stale_evaluation with the recipe's settings: a family evaluated with them is left alone; one
    evaluated before the rule against loops (the shipped family until 2026-12-02) is evaluated again, every
    point in one forced pass, and is then up to date."""
    import dataclasses

    from modpo.demo import reset_stale_evaluation
    from modpo.evaluate import EvalSettings
    from modpo.sweep import evaluate_missing

    root = checkpoints / "tiny"
    prompts, logs = fam.read_eval_prompts(root), []
    own = EvalSettings.from_recorded(fam.recorded_eval_settings(fam.load_family(root)))
    assert own.no_repeat_ngram == 0
    assert not reset_stale_evaluation(root, prompts, logs.append, own) and not logs
    banned = dataclasses.replace(own, no_repeat_ngram=4)
    assert reset_stale_evaluation(root, prompts, logs.append, banned)
    assert len(logs) == 1 and "evaluated with other settings (no_repeat_ngram 0 -> 4)" in logs[0]
    assert all(p.eval for p in fam.load_family(root).points), "stored evaluations stay until replaced"
    model, tokenizer = tiny
    done = evaluate_missing(root, model, tokenizer, prompts, banned, log=logs.append, force=True)
    family = fam.load_family(root)
    assert sorted(done) == sorted(p.id for p in family.points)
    assert all(p.eval["settings"]["no_repeat_ngram"] == 4 for p in family.points)
    assert not reset_stale_evaluation(root, prompts, logs.append, banned)


def test_the_front_page_shows_the_resampled_hypervolume_ratio(demo, monkeypatch):
    """The Front page's audit caption (AppTest) carries the ratio and its bootstrap interval as computed."""
    from app_helpers import front_page_at

    from modpo.front import conditioned_hypervolume_interval
    family, table = demo
    interval = conditioned_hypervolume_interval(family, table)
    monkeypatch.setenv("MODPO_CHECKPOINTS", str(DEMO.parent))
    at = front_page_at("demo")
    captions = [c.value for c in at.caption if "Hypervolume of the conditioned adapter" in c.value]
    assert len(captions) == 1, [c.value for c in at.caption]
    assert (f"over resampled held-out prompts {interval['low']:.2f}-{interval['high']:.2f} (90% of 300 bootstrap "
            "draws)") in captions[0]
