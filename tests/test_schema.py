"""modpo/schema.py: the one check every family JSON file passes, with the field named."""
import pytest

from modpo.schema import FamilyError, parse, validate


def test_nan_and_infinity_are_refused_when_parsed():
    for text in ('{"a": NaN}', '{"a": -Infinity}'):
        with pytest.raises(FamilyError, match="is not a number JSON allows"):
            parse(text, "x.json")


def test_errors_name_the_file_and_the_field():
    with pytest.raises(FamilyError, match=r"eval.json: field 'objectives.a.stderr': -1 is less than the minimum"):
        validate("eval", {"schema_version": 1, "objectives": {"a": {"mean": 0, "stderr": -1}}}, "eval.json")
    with pytest.raises(FamilyError, match=r"meta.json: required field 'kind' is missing"):
        validate("meta", {"schema_version": 1, "id": "x"}, "meta.json")


def test_status_may_hold_only_our_fields_and_others_keep_unknown_keys():
    with pytest.raises(FamilyError, match="unexpected field"):
        validate("status", {"schema_version": 1, "id": "j", "state": "queued", "command": ["sh"]}, "status.json")
    ok = {"schema_version": 1, "id": "w", "kind": "modpo", "a_newer_field": [1]}
    assert validate("meta", ok, "meta.json") is ok


def test_numbers_built_in_python_are_checked_too():
    with pytest.raises(FamilyError, match="is not a finite number"):
        validate("eval", {"schema_version": 1, "objectives": {"a": {"mean": float("nan"), "stderr": 0}}}, "e.json")


def test_an_adapters_mixture_term_power_is_1_or_2():
    meta = {"schema_version": 1, "id": "w", "kind": "modpo", "objective": "all"}
    for power in (1, 2):
        assert validate("meta", {**meta, "mixture_term_power": power}, "meta.json")["mixture_term_power"] == power
    with pytest.raises(FamilyError, match=r"meta.json: field 'mixture_term_power': 3 is not one of \[1, 2\]"):
        validate("meta", {**meta, "mixture_term_power": 3}, "meta.json")
