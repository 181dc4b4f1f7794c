"""modpo/front.py: a family as a table, its front and hypervolume, checked by hand."""
import numpy as np
import pytest

from modpo import family as fam
from modpo.front import front_table, table_hypervolume


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
