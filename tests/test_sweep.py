"""modpo/sweep.py: margins from a family, and when stored pairs are reused or recomputed."""
import pytest

from modpo import family as fam
from modpo.data import rows_from_records
from modpo.margins import MarginSpec
from modpo.sweep import margin_adapter_id, margin_specs, pairs_key


def spec(margins):
    return fam.FamilySpec("f", "tiny", [fam.Objective("a", "maximize", "words"), fam.Objective("b", "maximize",
                                                                                                "brevity")],
                          "a", 0.1, margins)


def test_margin_specs_follow_the_family():
    specs = margin_specs(spec({"b": {"kind": "explicit", "scorer": "brevity", "scale": 0.5}}))
    assert [(m.objective, m.kind, m.scale) for m in specs] == [("b", "explicit", 0.5)]
    assert margin_adapter_id("b") == "dpo-b"
    with pytest.raises(ValueError, match="has no margin for objective 'b'"):
        margin_specs(spec({}))


def test_the_pairs_key_changes_with_what_the_columns_depend_on():
    data = rows_from_records([{"prompt": "p", "responses": ["x", "y z"], "preferences": {"a": 0, "b": 1}}], "d")
    m = [MarginSpec.from_json("b", {"kind": "explicit", "scorer": "brevity", "scale": 0.5}, True)]
    key = pairs_key(spec({}), data, "a", m, 64)
    assert key != pairs_key(spec({}), data, "a", m, 128)
    other_beta = fam.FamilySpec("f", "tiny", spec({}).objectives, "a", 0.2)
    assert key != pairs_key(other_beta, data, "a", m, 64)


def test_the_pairs_key_changes_when_the_labels_are_redrawn():
    records = [{"prompt": "p", "responses": ["x", "y z"], "preferences": {"a": 0, "b": 1}}]
    key = pairs_key(spec({}), rows_from_records(records, "d"), "a", [], 64)
    records[0]["preferences"]["a"] = 1
    assert key != pairs_key(spec({}), rows_from_records(records, "d"), "a", [], 64)
    records[0]["preferences"]["b"] = 0  # another objective's labels do not touch a's pairs
    assert key != pairs_key(spec({}), rows_from_records(records, "d"), "a", [], 64) == \
        pairs_key(spec({}), rows_from_records([{**records[0], "preferences": {"a": 1, "b": 1}}], "d"), "a", [], 64)


def test_bradley_terry_families_train_on_the_probability_of_each_label(tmp_path, tiny, tiny_prefs):
    from modpo.feedback import bradley_terry_labels, chosen_probability, reward_scales
    from modpo.sweep import prepare_pairs
    model, tokenizer = tiny
    objectives = [fam.Objective("positivity", "maximize", "sentiment"), fam.Objective("brevity", "maximize", "brevity")]
    scales = reward_scales(tiny_prefs, objectives, 1.5)
    data = bradley_terry_labels(tiny_prefs, scales, seed=0)
    labels = {"kind": "bradley-terry", "reward_scales": scales, "nats_per_sd": 1.5, "seed": 0}
    bt = fam.FamilySpec("f", "tiny", objectives, "positivity", 1.0, {}, labels=labels)
    fam.write_family(tmp_path / "bt", bt)
    assert fam.read_family(tmp_path / "bt").labels == labels  # recorded in family.json, read back
    pairs = prepare_pairs(tmp_path / "bt", bt, model, tokenizer, data, "positivity", [], 256, progress=False)
    expected = [chosen_probability(data.rows[ex["row"]], "positivity", scales["positivity"]) for ex in pairs]
    assert [ex["chosen_probs"] for ex in pairs] == pytest.approx(expected)
    assert 0 < min(expected) < 0.5 < max(expected) < 1  # some drawn labels went against the scorer
    # brevity's pairs are the same responses: their reference log-probs come from positivity's, unchanged
    from modpo.sweep import stored_reference
    known = stored_reference(tmp_path / "bt", bt, 256)
    assert len(known) >= len(pairs)
    fresh = prepare_pairs(tmp_path / "fresh", bt, model, tokenizer, data, "brevity", [], 256, progress=False)
    reused = prepare_pairs(tmp_path / "bt", bt, model, tokenizer, data, "brevity", [], 256, progress=False)
    for a, b in zip(fresh, reused):
        assert (a["chosen"], a["reference_chosen_logps"]) == (b["chosen"], pytest.approx(b["reference_chosen_logps"]))
        assert known[(b["row"], b["prompt"], b["rejected"])] == b["reference_rejected_logps"]
    plain = fam.FamilySpec("f", "tiny", objectives, "positivity", 1.0, {})
    assert "chosen_probs" not in prepare_pairs(tmp_path / "plain", plain, model, tokenizer, data, "positivity", [],
                                               256, progress=False)[0]
    with pytest.raises(fam.FamilyError, match="labels must be"):
        fam.FamilySpec("f", "tiny", objectives, "positivity", 1.0, {}, labels={"kind": "coin"})


def test_a_point_trains_on_another_objectives_labels_with_the_target_as_its_bradley_terry_margin(tiny, bt_family):
    import json

    from modpo.cli import main
    from modpo.sweep import pairs_for_weighting, prepare_pairs
    model, tokenizer = tiny
    root, bt, data = bt_family
    scales = bt.labels["reward_scales"]
    # brevity's labels, positivity a margin: its Bradley-Terry reward, scale x the sentiment score
    [m] = margin_specs(bt, "brevity")
    assert (m.objective, m.kind, m.scorer, m.scale) == ("positivity", "explicit", "sentiment", scales["positivity"])
    pairs = pairs_for_weighting(root, bt, model, tokenizer, data, [0.3, 0.7], 256, labels_from="brevity")
    row = data.rows[pairs[0]["row"]]
    chosen = row.responses.index(pairs[0]["chosen"])
    assert pairs[0]["margin_chosen_rewards"] == pytest.approx([scales["positivity"] * row.scores["positivity"][chosen]])
    assert (root / "data" / "pairs-brevity-margins").is_dir()  # apart from brevity's plain DPO pairs
    prepare_pairs(root, bt, model, tokenizer, data, "positivity", margin_specs(bt), 256, progress=False)
    assert main(["train", "--family", str(root), "--weights", "0.3,0.7", "--labels-from", "brevity", "--steps", "2",
                 "--no-eval"]) == 0
    meta = json.loads((fam.adapter_dir(root, "w-0.30-0.70") / "meta.json").read_text())
    assert (meta["objective"], meta["weights"], meta["train_pairs"]) == ("brevity", {"positivity": 0.3, "brevity": 0.7},
                                                                         len(pairs))
    # every objective's labels at once: the target's pairs with every reward as a column (family order), the
    # mixture loss (its math: test_loss.py), trained through the CLI like any point
    mixed = pairs_for_weighting(root, bt, model, tokenizer, data, [0.3, 0.7], 256, labels_from="all")
    assert (root / "data" / "pairs-all-margins").is_dir()
    row = data.rows[mixed[0]["row"]]
    chosen = row.responses.index(mixed[0]["chosen"])
    assert mixed[0]["margin_chosen_rewards"] == pytest.approx([scales[o] * row.scores[o][chosen]
                                                                for o in ("positivity", "brevity")], rel=1e-5)
    assert main(["train", "--family", str(root), "--weights", "0.3,0.7", "--labels-from", "all", "--steps", "2",
                 "--no-eval", "--id", "mixed"]) == 0
    meta = json.loads((fam.adapter_dir(root, "mixed") / "meta.json").read_text())
    assert (meta["objective"], meta["mixture_term_power"], meta["train_pairs"], meta["steps"]) == \
        ("all", 2, len(mixed), 2)
    assert meta["loss_curve"] and all(loss > 0 for _, loss in meta["loss_curve"])
    # a family whose target's reward is unknown cannot give it as a margin: a clear refusal
    plain = fam.FamilySpec("plain", "tiny", bt.objectives, "positivity", 1.0, bt.margins)
    with pytest.raises(ValueError, match="'brevity''s labels can train a point only if the target 'positivity' has "
                                         "a known reward"):
        margin_specs(plain, "brevity")


def test_a_sweeps_finished_points_read_trained_not_training(tiny_checkpoints):
    """A sweep trains each point to the end (its evaluation is the sweep's own later pass): the job says
    done and trained, where it used to stay in phase training (the Train page showed "done (training)")."""
    root = tiny_checkpoints / "tiny"
    statuses = [fam.read_status(root, d.name) for d in (root / "jobs").iterdir() if (d / "status.json").is_file()]
    assert statuses and all((s["state"], s["phase"]) == ("done", "trained") for s in statuses), statuses


def test_a_weighting_without_the_target_trains_on_the_heaviest_objectives_labels(tmp_path, tiny):
    """The face of the simplex opposite the target's vertex: (0, 0.6, 0.4) trains on brevity's labels (its
    heaviest), the target and length its margins at their Bradley-Terry reward, stored apart from brevity's
    plain pairs, through the same sweep as every other point; a family that does not know its target's
    reward refuses such a weighting before anything trains."""
    import json

    from conftest import TINY_PROMPTS

    from modpo.config import TrainConfig
    from modpo.feedback import bradley_terry_labels, reward_scales, sample_preferences
    from modpo.generate import GenerationSettings
    from modpo.jobs import check_params
    from modpo.sweep import pairs_plan, run_sweep
    model, tokenizer = tiny
    objectives = [fam.Objective("positivity", "maximize", "sentiment"), fam.Objective("brevity", "maximize", "brevity"),
                  fam.Objective("wordiness", "maximize", "words")]
    data = sample_preferences(model, tokenizer, TINY_PROMPTS, objectives, GenerationSettings(24, 1.0, 1.0, 0))
    scales = reward_scales(data, objectives, 1.5)
    data = bradley_terry_labels(data, scales, seed=0)
    margins = {o: {"kind": "explicit", "scorer": s, "scale": scales[o]} for o, s in
               (("brevity", "brevity"), ("wordiness", "words"))}
    labels = {"kind": "bradley-terry", "reward_scales": scales, "nats_per_sd": 1.5, "seed": 0}
    bt = fam.FamilySpec("bt3", "tiny", objectives, "positivity", 1.0, margins, labels=labels)
    plan = pairs_plan(bt, [0.0, 0.6, 0.4])
    assert (plan.objective, plan.ordered, plan.labelled, plan.store) == ("brevity", [0.6, 0.0, 0.4], "brevity",
                                                                          "brevity-margins")
    assert [(m.objective, m.scale) for m in plan.margins] == [("positivity", scales["positivity"]),
                                                              ("wordiness", scales["wordiness"])]
    root = tmp_path / "bt3"
    cfg = TrainConfig(max_steps=2, lora_r=4, lora_alpha=8, learning_rate=5e-3, max_length=256, batch_size=4)
    times = run_sweep(root, bt, model, tokenizer, data, [(0.0, 0.6, 0.4), (0.0, 1.0, 0.0)], cfg, None,
                      log=lambda m: None)
    assert {"precompute", "precompute brevity-margins", "precompute brevity"} <= set(times)
    meta = json.loads((fam.adapter_dir(root, "w-0.00-0.60-0.40") / "meta.json").read_text())
    assert meta["objective"] == "brevity" and meta["steps"] == 2
    stored = fam.read_pairs(root, "brevity-margins")[1]
    plain = fam.read_pairs(root, "brevity")[1]  # the vertex's DPO pairs: the same labels, no margin columns
    assert len(stored) == meta["train_pairs"] == len(plain) and plain[0]["margin_chosen_rewards"] == []
    row = data.rows[stored[0]["row"]]
    chosen = row.responses.index(stored[0]["chosen"])
    assert stored[0]["margin_chosen_rewards"] == pytest.approx(
        [scales[o] * row.scores[o][chosen] for o in ("positivity", "wordiness")], rel=1e-5)
    # without the target's reward there is no margin to give it: refused at launch, saying what to do
    plain_spec = fam.FamilySpec("plain", "tiny", objectives, "positivity", 1.0, margins)
    with pytest.raises(fam.FamilyError, match="target 'positivity' has a known reward.*give 'positivity' a weight > 0"):
        check_params(plain_spec, {"weights": [0.0, 0.6, 0.4], "steps": 2})
    assert check_params(bt, {"weights": [0.0, 0.6, 0.4], "steps": 2})["weights"] == [0.0, 0.6, 0.4]
    # a family built on its heaviest objective's labels records the rule, and a new point follows it unasked
    from modpo.cli import main
    recorded = fam.read_family(root)
    recorded.notes["labels_from"] = "largest"
    fam.write_family(root, recorded)
    assert main(["train", "--family", str(root), "--weights", "0.2,0.2,0.6", "--steps", "1", "--no-eval"]) == 0
    assert json.loads((fam.adapter_dir(root, "w-0.20-0.20-0.60") / "meta.json").read_text())["objective"] == "wordiness"
    recorded.notes["labels_from"] = "rm -rf /"
    fam.write_family(root, recorded)
    with pytest.raises(fam.FamilyError, match=r"notes.labels_from must be one of \['positivity', 'brevity', "
                                              r"'wordiness', 'all', 'largest'\].*got 'rm -rf /'"):
        check_params(fam.read_family(root), {"weights": [0.2, 0.2, 0.6], "steps": 2})
