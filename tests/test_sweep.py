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
