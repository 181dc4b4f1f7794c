"""modpo/front.py: a family as a table, its front and hypervolume, checked by hand."""
import numpy as np
import pytest

from modpo import family as fam
from modpo.front import front_table, gains_over_base, paired_gain, table_hypervolume


def point(pid, kind, weights, a, b):
    ev = {"objectives": {"a": {"mean": a, "stderr": 0.1, "n": 4}, "b": {"mean": b, "stderr": 0.2, "n": 4}},
          "kl": {"mean": 0.5, "stderr": 0.0}}
    return fam.Point(pid, kind, weights, {"steps": 3}, ev if a is not None else None, None)


@pytest.fixture
def family():
    spec = fam.FamilySpec("f", "tiny", [fam.Objective("a", "maximize"), fam.Objective("b", "minimize")], "a", 0.1)
    points = [point("base", "base", None, 0.0, 5.0),
              point("w1", "modpo", {"a": 0.7, "b": 0.3}, 1.0, 4.0),
              point("w2", "modpo", {"a": 0.3, "b": 0.7}, 0.5, 2.0),
              point("w3", "modpo", {"a": 0.5, "b": 0.5}, 0.4, 3.0),   # dominated by w2 (lower a, higher b)
              point("new", "modpo", {"a": 0.6, "b": 0.4}, None, None)]  # not evaluated yet
    return fam.Family(None, spec, points, [])


def test_front_respects_each_objectives_direction(family):
    table = front_table(family)
    assert dict(zip(table["id"], table["on_front"])) == {"base": False, "w1": True, "w2": True, "w3": False,
                                                         "new": False}
    assert table.loc[table["id"] == "w1", "b_stderr"].item() == 0.2
    assert np.isnan(table.loc[table["id"] == "new", "a"].item()) and not table["evaluated"].iloc[-1]


def test_hypervolume_by_hand(family):
    table = front_table(family)
    # reference (a=0, b=5): w1 spans a in [0,1] x b in [4,5], w2 adds a in [0,0.5] x b in [2,4]
    hv, ref = table_hypervolume(family, table, reference_point=[0.0, 5.0])
    assert hv == pytest.approx(1.0 * 1.0 + 0.5 * 2.0)
    assert ref.tolist() == [0.0, 5.0]


def record(prompts, a_scores, n=None):
    """An eval.json record that saved its answer to every prompt (or claims n prompts)."""
    a = np.asarray(a_scores, float)
    return {"objectives": {"a": {"mean": float(a.mean()), "stderr": float(a.std(ddof=1) / np.sqrt(len(a))),
                                 "n": len(a)}},
            "prompt_set": {"n": n or len(prompts), "sha": "x"},
            "samples": [{"prompt": p, "response": "r", "scores": {"a": float(s)}} for p, s in zip(prompts, a)]}


def test_paired_gain_is_the_standard_error_of_the_per_prompt_difference():
    prompts = ["p1", "p2", "p3", "p4"]
    hard_easy = np.array([0.1, 0.9, 0.2, 0.8])  # each prompt's difficulty, shared by both points
    point, base = record(prompts, hard_easy + [0.11, 0.09, 0.1, 0.1]), record(prompts, hard_easy)
    mean, se = paired_gain(point, base, "a")
    d = np.array([0.11, 0.09, 0.1, 0.1])
    assert mean == pytest.approx(0.1) and se == pytest.approx(d.std(ddof=1) / 2)
    apart = np.hypot(point["objectives"]["a"]["stderr"], base["objectives"]["a"]["stderr"])
    assert mean / se > 10 * (mean / apart)  # the shared difficulty no longer hides the gain
    assert paired_gain(point, record(prompts[::-1], hard_easy), "a") is None  # other prompts: no pairing
    assert paired_gain(point, record(prompts, hard_easy, n=5), "a") is None  # not every answer saved
    assert paired_gain(point, base, "b") is None  # an objective the records do not score


def test_gains_over_base_give_both_standard_errors():
    prompts = ["p1", "p2", "p3", "p4"]
    spec = fam.FamilySpec("f", "tiny", [fam.Objective("a", "maximize"), fam.Objective("b", "minimize")], "a", 0.1)
    base_eval, point_eval = record(prompts, [0.1, 0.9, 0.2, 0.8]), record(prompts, [0.3, 1.0, 0.4, 0.9])
    for ev in (base_eval, point_eval):
        ev["objectives"]["b"] = {"mean": 1.0, "stderr": 0.5, "n": 4}
    family = fam.Family(None, spec, [fam.Point("base", "base", None, {}, base_eval, None),
                                     fam.Point("w", "modpo", {"a": 1.0, "b": 0.0}, {}, point_eval, None)], [])
    [row] = gains_over_base(family, front_table(family)).to_dict("records")
    assert row["a_gain"] == pytest.approx(0.15)
    apart = np.hypot(point_eval["objectives"]["a"]["stderr"], base_eval["objectives"]["a"]["stderr"])
    assert row["a_z"] == pytest.approx(0.15 / apart)
    assert row["a_z_paired"] == pytest.approx(0.15 / (np.std([0.2, 0.1, 0.2, 0.1], ddof=1) / 2))
    assert row["b_z"] == 0 and np.isnan(row["b_z_paired"])  # b's answers were not saved with scores
