"""modpo/evaluate.py: one answering pipeline for every kind of point (base, adapter, merge, mix)."""
import numpy as np
import pytest

from modpo import family as fam
from modpo.config import EvalSettings
from modpo.evaluate import BASE, Mix, adapters_of, answer_points, evaluate_points, mean_stderr, policy_of
from modpo.generate import generate, response_logps, trim_to_sentence
from modpo.models import attach_adapters, load_base, peft_name

PROMPTS = ["tell me about cats", "tell me about rain", "tell me about tea"]


@pytest.fixture(scope="module")
def loaded(tiny_checkpoints):
    family = fam.load_family(tiny_checkpoints / "tiny")
    model, tok = load_base("tiny")
    model = attach_adapters(model, adapters_of(family, family.points))
    return family, model, tok


def test_every_kind_of_point_is_trimmed_the_same_way(loaded):
    """The drift this pipeline removes: a mix used to skip trim_capped while adapters were trimmed."""
    family, model, tok = loaded
    policies = {"base": BASE, "w-0.70-0.30": peft_name("w-0.70-0.30"),
                "mix": Mix((peft_name("w-1.00-0.00"), peft_name("w-0.30-0.70")), (0.5, 0.5))}
    trimmed = answer_points(
        model, tok, family.spec, PROMPTS, policies, EvalSettings(max_new_tokens=10, trim_capped=True)
    )
    raw = answer_points(model, tok, family.spec, PROMPTS, policies, EvalSettings(max_new_tokens=10))
    for point_id in policies:
        t, r = trimmed[point_id], raw[point_id]
        assert t["response_ids"] == r["response_ids"], "trimming never changes what was generated"
        for text, raw_text, capped in zip(t["texts"], r["texts"], t["capped"]):
            assert text == ((trim_to_sentence(raw_text) or raw_text) if capped else raw_text), point_id
        np.testing.assert_allclose(t["scores"]["brevity"], [-len(x.split()) for x in t["texts"]])


def test_answers_match_plain_generation_and_their_log_probs(loaded):
    family, model, tok = loaded
    settings = EvalSettings(max_new_tokens=12)
    answers = answer_points(model, tok, family.spec, PROMPTS, {"a": peft_name("w-0.70-0.30"), "base": BASE}, settings)
    plain = generate(model, tok, PROMPTS, [peft_name("w-0.70-0.30")] * 3, settings.generation())
    assert answers["a"]["texts"] == [o["text"] for o in plain]
    direct = response_logps(model, tok, PROMPTS, answers["a"]["response_ids"], [peft_name("w-0.70-0.30")] * 3)
    np.testing.assert_allclose(answers["a"]["logps"], direct.numpy(), atol=1e-3)


def test_evaluate_points_kl_is_zero_for_the_base_and_records_the_settings(loaded):
    family, model, tok = loaded
    settings = EvalSettings(max_new_tokens=8, samples_saved=2)
    records = evaluate_points(model, tok, family.spec, PROMPTS, {"base": BASE, "w": peft_name("w-0.30-0.70")}, settings)
    assert records["base"]["kl"]["mean"] == 0.0
    assert records["w"]["kl"]["mean"] != 0.0
    assert records["w"]["settings"]["max_new_tokens"] == 8 and len(records["w"]["samples"]) == 2
    assert records["w"]["prompt_set"] == {"n": 3, "sha": fam.prompt_set_id(PROMPTS)}


def test_the_reference_pass_scores_each_distinct_answer_once(loaded, monkeypatch):
    """Two ids for one adapter give the same answers: the base model scores each (prompt, answer) once, and
    every point's KL estimate is its own log-prob minus the base model's log-prob of its own answer."""
    import modpo.evaluate as ev
    family, model, tok = loaded
    passes = []
    monkeypatch.setattr(ev, "response_logps", lambda *a, **k: passes.append(len(a[2])) or response_logps(*a, **k))
    settings = EvalSettings(max_new_tokens=8)
    policies = {"a": peft_name("w-0.30-0.70"), "same": peft_name("w-0.30-0.70"), "b": peft_name("w-1.00-0.00")}
    records = evaluate_points(model, tok, family.spec, PROMPTS, policies, settings)
    answers = answer_points(model, tok, family.spec, PROMPTS, policies, settings)
    distinct = {(k, tuple(answers[i]["response_ids"][k])) for i in policies for k in range(len(PROMPTS))}
    assert passes == [len(distinct)] and len(distinct) <= 2 * len(PROMPTS) < 3 * len(PROMPTS)
    for i in policies:
        base = response_logps(model, tok, PROMPTS, answers[i]["response_ids"], [BASE] * len(PROMPTS))
        expected = answers[i]["logps"] - base.numpy()
        assert records[i]["kl"]["mean"] == pytest.approx(float(np.mean(expected)), abs=1e-4), i
    # the same answers, the same estimate (to float32 noise: on the 2-core AMD machine the two passes differ in
    # the 7th digit, -0.1300510 against -0.1300511)
    for key in ("mean", "stderr"):
        assert records["a"]["kl"][key] == pytest.approx(records["same"]["kl"][key], rel=1e-5, abs=1e-6)


def test_policy_of_each_point_kind(loaded):
    family, _, _ = loaded
    assert policy_of(family.point("base")) == BASE
    assert policy_of(family.point("w-0.70-0.30")) == peft_name("w-0.70-0.30")


def test_mean_stderr_by_hand():
    assert mean_stderr([1.0, 3.0]) == {"mean": 2.0, "stderr": 1.0, "n": 2}
    assert mean_stderr([5.0])["stderr"] == 0.0


def test_progress_is_reported_up_to_every_answer(loaded):
    family, model, tok = loaded
    seen = []
    policies = {"base": BASE, "mix": Mix((peft_name("w-1.00-0.00"), peft_name("w-0.30-0.70")), (0.5, 0.5))}
    answer_points(model, tok, family.spec, PROMPTS, policies, EvalSettings(max_new_tokens=4, batch_size=2),
                  on_progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (6, 6) and all(t == 6 for _, t in seen)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen) and len(seen) >= 3
