"""modpo/feedback.py: Bradley-Terry labels at a stated reward scale, and the scales themselves."""
import numpy as np
import pytest

from modpo.data import PreferenceDataset, PreferenceRow
from modpo.family import Objective
from modpo.feedback import bradley_terry_labels, conflict, reward_scales

UP, DOWN = Objective("up", "maximize", "words"), Objective("down", "minimize", "words")


def dataset(pairs: list[tuple[float, float]]) -> PreferenceDataset:
    rows = [PreferenceRow(f"p{i}", (f"a{i}", f"b{i}"), {"up": None, "down": None}, {"up": s, "down": s})
            for i, s in enumerate(pairs)]
    return PreferenceDataset(["up", "down"], rows, "test")


def test_one_standard_deviation_is_worth_the_stated_nats_and_minimizing_flips_the_sign():
    data = dataset([(0.0, 2.0), (4.0, 2.0)])  # scores 0, 2, 4, 2: population sd sqrt(2)
    scales = reward_scales(data, [UP, DOWN], nats_per_sd=1.5)
    assert scales["up"] == pytest.approx(1.5 / np.sqrt(2))
    assert scales["down"] == pytest.approx(-1.5 / np.sqrt(2))


def test_scores_that_never_vary_cannot_be_scaled():
    with pytest.raises(ValueError, match="'up': its scores do not vary"):
        reward_scales(dataset([(1.0, 1.0), (1.0, 1.0)]), [UP], 1.0)
    with pytest.raises(ValueError, match="nats_per_sd must be > 0"):
        reward_scales(dataset([(0.0, 1.0)]), [UP], 0.0)


def test_labels_follow_the_bradley_terry_probability_of_the_reward_difference():
    n = 6000
    data = dataset([(0.0, 0.5)] * n)  # response 1 is 0.5 better on "up", 0.5 worse on "down"
    labelled = bradley_terry_labels(data, {"up": 2.0, "down": -2.0}, seed=3)
    p_up = np.mean([r.preferences["up"] for r in labelled.rows])
    p_down = np.mean([r.preferences["down"] for r in labelled.rows])
    expected = 1 / (1 + np.exp(-1.0))  # sigmoid(2.0 x 0.5)
    se = np.sqrt(expected * (1 - expected) / n)
    assert abs(p_up - expected) < 4 * se and abs(p_down - (1 - expected)) < 4 * se
    assert [r.scores for r in labelled.rows] == [r.scores for r in data.rows]  # scores are kept


def test_labels_are_deterministic_for_a_seed_and_a_large_difference_is_almost_always_right():
    data = dataset([(0.0, 1.0), (1.0, 0.0)] * 200)
    a = bradley_terry_labels(data, {"up": 1.0}, seed=0)
    assert a.rows == bradley_terry_labels(data, {"up": 1.0}, seed=0).rows
    assert a.rows != bradley_terry_labels(data, {"up": 1.0}, seed=1).rows
    sharp = bradley_terry_labels(data, {"up": 50.0}, seed=0)
    assert [r.preferences["up"] for r in sharp.rows] == [1, 0] * 200
    assert all(r.preferences["down"] is None for r in sharp.rows)  # an objective without a scale keeps its labels


def test_conflict_measures_disagreement_of_the_drawn_labels():
    data = bradley_terry_labels(dataset([(0.0, 1.0), (1.0, 0.0)] * 50), {"up": 50.0, "down": -50.0}, 0)
    clash = conflict(data, "up", "down")
    assert clash["pearson"] == pytest.approx(1.0) and clash["label_disagreement"] == 1.0


def test_contrast_pairs_take_per_objective_the_two_responses_that_differ_most():
    from modpo.feedback import contrast_pairs
    texts = ["a", "bb", "ccc", "dddd"]
    scores = {"up": np.array([0.1, 0.9, 0.5, 0.4]), "long": np.array([1.0, 2.0, 3.0, 9.0])}
    assert contrast_pairs(scores, texts) == [(0, 1), (0, 3)]
    assert contrast_pairs({"up": scores["up"], "same": scores["up"] * 2}, texts) == [(0, 1)]  # one row, not two
    # empty and repeated responses are never paired
    # (0, 3) would differ most, but says the same thing twice; (0, 1) and (1, 3) pair an empty answer
    assert contrast_pairs({"up": np.array([0.0, 5.0, 1.0, 5.0])}, ["x", " ", "y", "x"]) == [(2, 3)]
    assert contrast_pairs({"up": np.array([0.0, 1.0])}, ["x", "x"]) == []
    assert contrast_pairs({"up": np.array([0.0, 1.0])}, ["x", "y"]) == [(0, 1)]  # two samples: the one pair


def test_matched_contrast_pairs_hold_another_objective_nearly_fixed():
    from modpo.feedback import contrast_pairs
    texts = ["a", "bb", "ccc", "dddd"]
    scores = {"relevance": np.array([0.0, 1.0, 0.9, 0.1]), "brevity": np.array([-10.0, -30.0, -12.0, -11.0])}
    # unmatched, relevance's widest pair (0, 1) is also 20 words apart: its label would reward length
    assert contrast_pairs(scores, texts) == [(0, 1)]
    # matched within 5 words: relevance takes (0, 2) (0.9 apart, 2 words); brevity keeps its widest pair
    assert contrast_pairs(scores, texts, {"relevance": ("brevity", 5.0)}) == [(0, 2), (0, 1)]
    # no pair close enough: relevance gets none that prompt, brevity still its own
    assert contrast_pairs(scores, texts, {"relevance": ("brevity", 0.5)}) == [(0, 1)]
    with pytest.raises(ValueError, match="'relevance' on 'length'"):
        contrast_pairs(scores, texts, {"relevance": ("length", 5.0)})
    with pytest.raises(ValueError, match="tolerance must be >= 0"):
        contrast_pairs(scores, texts, {"relevance": ("brevity", -1.0)})


def test_closed_form_means_tilt_each_prompts_answers_by_the_weighted_reward():
    # prompt x: answers (a: rel 0, len -10), (b: rel 1, len -30), two rows sharing b; prompt y: one row
    from modpo.feedback import closed_form_means
    rows = [PreferenceRow("x", ["a", "b"], {"rel": 1, "brev": 0}, {"rel": [0.0, 1.0], "brev": [-10.0, -30.0]}),
            PreferenceRow("x", ["b", "c"], {"rel": 0, "brev": 1}, {"rel": [1.0, 0.5], "brev": [-30.0, -20.0]}),
            PreferenceRow("y", ["d", "e"], {"rel": 1, "brev": 1}, {"rel": [0.2, 0.4], "brev": [-5.0, -5.0]})]
    data = PreferenceDataset(["rel", "brev"], rows)
    scales, beta = {"rel": 2.0, "brev": 0.1}, 0.5
    for w in ({"rel": 1.0, "brev": 0.0}, {"rel": 0.3, "brev": 0.7}):
        expected = []
        for answers in ([[0.0, -10.0], [1.0, -30.0], [0.5, -20.0]], [[0.2, -5.0], [0.4, -5.0]]):
            s = np.array(answers)
            p = np.exp((s * [2.0, 0.1]) @ [w["rel"], w["brev"]] / beta)
            expected.append(p @ s / p.sum())
        got = closed_form_means(data, scales, w, beta)
        np.testing.assert_allclose([got["rel"], got["brev"]], np.mean(expected, axis=0), rtol=1e-12)
    # more weight on relevance: more relevant and longer answers at the optimum
    lean_rel = closed_form_means(data, scales, {"rel": 0.9, "brev": 0.1}, beta)
    lean_brev = closed_form_means(data, scales, {"rel": 0.1, "brev": 0.9}, beta)
    assert lean_rel["rel"] > lean_brev["rel"] and lean_rel["brev"] < lean_brev["brev"]
    with pytest.raises(ValueError, match="sum to 1"):
        closed_form_means(data, scales, {"rel": 0.9, "brev": 0.9}, beta)
    with pytest.raises(ValueError, match="beta must be > 0"):
        closed_form_means(data, scales, {"rel": 0.5, "brev": 0.5}, 0.0)


def test_closed_form_means_names_a_row_without_every_objectives_score():
    from modpo.feedback import closed_form_means
    rows = [PreferenceRow("how do magnets work?", ["a", "b"], {"rel": 1, "brev": None}, {"rel": [0.1, 0.2]})]
    with pytest.raises(ValueError, match=r"row 'how do magnets work\?' has no scores on \['brev'\]"):
        closed_form_means(PreferenceDataset(["rel", "brev"], rows), {"rel": 2.0, "brev": 0.1},
                          {"rel": 0.5, "brev": 0.5}, 1.0)


@pytest.mark.parametrize("rule, kept", [(1, "Cut here. Tips:\n\n1."), (2, "Cut here.")])
def test_sampled_pairs_are_trimmed_by_the_rule_asked(monkeypatch, rule, kept):
    """sample_preferences trims a capped sample by its trim_rule before scoring and pairing: under rule 2 a
    list's dangling "1." is not kept as the answer's end (training would append EOS to it). The generator is
    replaced by fixed answers (what is tested is the trimming of what it returns)."""
    from types import SimpleNamespace

    from modpo import feedback
    from modpo.generate import GenerationSettings
    eos = 2
    answers = [{"text": "Cut here. Tips:\n\n1. Drink water", "response_ids": [5, 6, 7]},  # capped: no EOS
               {"text": "A much longer answer that ended by itself with no sentence end", "response_ids": [5, eos]}]
    monkeypatch.setattr(feedback, "generate", lambda model, tokenizer, prompts, *a, **k: answers * (len(prompts) // 2))
    tokenizer = SimpleNamespace(eos_token_id=eos)
    data = feedback.sample_preferences(None, tokenizer, ["q"], [Objective("brevity", "maximize", "brevity")],
                                       GenerationSettings(8, 1.0, 1.0, 0), log=lambda m: None, trim_rule=rule)
    (row,) = data.rows
    assert kept in row.responses
    assert row.scores["brevity"][row.responses.index(kept)] == -len(kept.split())
