"""modpo/config.py: the settings dataclasses and how a family's saved settings become them."""
import pytest

from modpo.config import EvalSettings, GenerationSettings, TrainConfig


def test_train_config_round_trips_through_json():
    cfg = TrainConfig(lora_r=8, lora_alpha=16, target_modules=["q_proj"])
    assert TrainConfig(**{**cfg.to_json(), "target_modules": tuple(cfg.to_json()["target_modules"])}) == cfg
    assert cfg.to_json()["target_modules"] == ["q_proj"]


def test_eval_settings_from_a_family_record():
    recorded = {"max_new_tokens": 48, "temperature": 0.0, "seed": 3, "trim_capped": True, "batch_size": 8,
                "a_future_field": 1}
    s = EvalSettings.from_recorded(recorded, max_new_tokens=None, temperature=0.7)
    assert (s.max_new_tokens, s.temperature, s.seed, s.trim_capped, s.batch_size) == (48, 0.7, 3, True, 8)
    assert EvalSettings.from_recorded(None) == EvalSettings()
    assert s.generation() == GenerationSettings(48, 0.7, 1.0, 3)


def test_what_makes_evaluations_incomparable():
    recorded = {"max_new_tokens": 48, "temperature": 0.0, "seed": 3, "trim_capped": True, "trim_rule": 2,
                "batch_size": 8}
    assert EvalSettings(max_new_tokens=48, seed=0, trim_capped=True, batch_size=64).differs_from(recorded) == {}
    assert EvalSettings(max_new_tokens=24, trim_capped=True).differs_from(recorded) == {"max_new_tokens": (48, 24)}
    assert EvalSettings().differs_from({}) == {}


def test_a_family_keeps_the_trim_rule_it_was_measured_by():
    """An evaluation recorded before the trim rule was (trim_capped, no trim_rule) trimmed by rule 1: new points
    of that family are measured by rule 1 too, and rule 2 against its record is a difference that matters."""
    legacy = {"max_new_tokens": 48, "temperature": 0.0, "seed": 0, "trim_capped": True}
    assert EvalSettings.from_recorded(legacy).trim_rule == 1
    assert EvalSettings.from_recorded({**legacy, "trim_rule": 2}).trim_rule == 2
    assert EvalSettings.from_recorded(None).trim_rule == 2  # a new family: the current rule
    assert EvalSettings(max_new_tokens=48, trim_capped=True).differs_from(legacy) == {"trim_rule": (1, 2)}
    assert EvalSettings(max_new_tokens=48, trim_capped=True, trim_rule=1).differs_from(legacy) == {}
    untrimmed = {"max_new_tokens": 48, "temperature": 0.0, "seed": 0, "trim_capped": False}
    assert EvalSettings(max_new_tokens=48).differs_from(untrimmed) == {}  # no trimming: the rule does not matter
    assert EvalSettings.answer_rules_of(legacy) == {"trim_capped": True, "trim_rule": 1, "no_repeat_ngram": 0}
    assert EvalSettings.answer_rules_of({**legacy, "trim_rule": 2})["trim_rule"] == 2
    assert EvalSettings.answer_rules_of({})["trim_capped"] is False


def test_a_family_keeps_its_rule_against_loops():
    """A record from before no_repeat_ngram banned nothing: a point evaluated with a ban is not comparable with
    it, and new points, the Compare page and `generate` decode by the rule the family recorded."""
    legacy = {"max_new_tokens": 96, "temperature": 0.0, "seed": 0, "trim_capped": True, "trim_rule": 2}
    assert EvalSettings.from_recorded(legacy).no_repeat_ngram == 0
    assert EvalSettings.from_recorded({**legacy, "no_repeat_ngram": 4}).no_repeat_ngram == 4
    assert EvalSettings(max_new_tokens=96, trim_capped=True, no_repeat_ngram=4).differs_from(legacy) == {
        "no_repeat_ngram": (0, 4)}
    assert EvalSettings(max_new_tokens=96, trim_capped=True).differs_from({**legacy, "no_repeat_ngram": 4}) == {
        "no_repeat_ngram": (4, 0)}
    assert EvalSettings.answer_rules_of({**legacy, "no_repeat_ngram": 4})["no_repeat_ngram"] == 4
    assert EvalSettings(no_repeat_ngram=3).generation().no_repeat_ngram == 3
    for bad in (1, -1, 17, 2.5, True, "4"):
        with pytest.raises(ValueError, match=r"no_repeat_ngram must be 0 \(off\) or an n-gram length in \[2, 16\]"):
            GenerationSettings(no_repeat_ngram=bad)
        with pytest.raises(ValueError, match="no_repeat_ngram must be"):
            EvalSettings(no_repeat_ngram=bad)


def test_generation_settings_validate():
    with pytest.raises(ValueError, match="min_new_tokens"):
        GenerationSettings(max_new_tokens=4, min_new_tokens=5)
