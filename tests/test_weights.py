"""modpo/weights.py: weighting ids, the loss's order, and the messages for bad weightings."""
import pytest

from modpo.weights import target_first, validate_simplex, validate_weights, weights_id


def test_ids_round_to_two_decimals_in_family_order():
    assert weights_id([0.7, 0.3]) == "w-0.70-0.30"
    assert weights_id([1 / 3, 1 / 3, 1 / 3]) == "w-0.33-0.33-0.33"
    assert weights_id([1.0, 0.0 * -1 + 0.0]) == "w-1.00-0.00"


def test_target_first_moves_the_target_weight_to_the_front():
    assert target_first(["a", "b", "c"], "b", [0.2, 0.5, 0.3]) == [0.5, 0.2, 0.3]
    with pytest.raises(ValueError, match="target objective 'b' must get a weight > 0.*a 0.6, b 0, c 0.4"):
        target_first(["a", "b", "c"], "b", [0.6, 0.0, 0.4])


def test_simplex_checks():
    assert validate_simplex([0.0, 1.0], ["a", "b"]) == [0.0, 1.0]  # a merge may sit at the target's zero end
    for bad in ([0.5, 0.6], [1.2, -0.2], [float("inf"), 0.0], [1.0]):
        with pytest.raises(ValueError, match="numbers >= 0 summing to 1"):
            validate_simplex(bad, ["a", "b"])
    assert validate_weights([0.25, 0.75]) == [0.25, 0.75]


def test_normalize_scales_form_values_onto_the_simplex():
    from modpo.weights import normalize
    assert normalize([1, 1, 2]) == [0.25, 0.25, 0.5]
    assert sum(normalize([1, 1, 1])) == 1.0
    with pytest.raises(ValueError, match="at least one weight must be > 0"):
        normalize([0, 0])
    with pytest.raises(ValueError, match=">= 0"):
        normalize([-1, 2])


def test_loss_plan_trains_a_vertex_of_another_objective_as_dpo_on_its_labels():
    from modpo.weights import loss_plan
    names = ["relevance", "sentiment", "brevity"]
    assert loss_plan(names, "relevance", [0, 1, 0]) == ("sentiment", [1.0])
    assert loss_plan(names, "relevance", [0.0, 0.0, 1.0]) == ("brevity", [1.0])
    assert loss_plan(names, "relevance", [1, 0, 0]) == ("relevance", [1.0, 0.0, 0.0])  # MODPO's own endpoint
    assert loss_plan(names, "sentiment", [0.2, 0.5, 0.3]) == ("sentiment", [0.5, 0.2, 0.3])
    with pytest.raises(ValueError, match="target objective 'relevance' must get a weight > 0.*DPO on that"):
        loss_plan(names, "relevance", [0.0, 0.5, 0.5], "relevance")  # asked for the target's labels


def test_loss_plan_trains_the_face_without_the_target_on_the_heaviest_objectives_labels():
    from modpo.weights import loss_plan
    names = ["relevance", "sentiment", "brevity"]
    assert loss_plan(names, "relevance", [0.0, 0.5, 0.5]) == ("sentiment", [0.5, 0.0, 0.5])  # a tie: family order
    assert loss_plan(names, "relevance", [0.0, 0.3, 0.7]) == ("brevity", [0.7, 0.0, 0.3])
    assert loss_plan(names, "brevity", [0.6, 0.4, 0.0]) == ("relevance", [0.6, 0.4, 0.0])
    with pytest.raises(ValueError, match="sum to 1"):
        loss_plan(names, "relevance", [0.0, 0.5, 0.6])
    # "largest": every weighting that way, the target's own labels where it holds the most weight
    assert loss_plan(names, "relevance", [0.2, 0.6, 0.2], "largest") == ("sentiment", [0.6, 0.2, 0.2])
    assert loss_plan(names, "relevance", [0.2, 0.2, 0.6], "largest") == ("brevity", [0.6, 0.2, 0.2])
    assert loss_plan(names, "relevance", [0.34, 0.33, 0.33], "largest") == ("relevance", [0.34, 0.33, 0.33])
    assert loss_plan(names, "relevance", [0.5, 0.5, 0.0], "largest") == ("relevance", [0.5, 0.5, 0.0])  # a tie
    assert loss_plan(names, "relevance", [0, 1, 0], "largest") == ("sentiment", [1.0])
    with pytest.raises(ValueError, match="weights has 2 entries but the family has 3"):
        loss_plan(names, "relevance", [0.5, 0.5], "largest")
    with pytest.raises(ValueError, match="an objective is named 'largest'"):
        loss_plan(["largest", "brevity"], "brevity", [0.5, 0.5], "largest")


def test_loss_plan_refuses_a_negative_weight_that_sums_with_the_others_to_one():
    from modpo.weights import loss_plan
    with pytest.raises(ValueError, match=">= 0"):
        loss_plan(["relevance", "sentiment", "brevity"], "relevance", [-1.0, 1.0, 1.0])


def test_loss_plan_can_train_an_interior_weighting_on_another_objectives_labels():
    from modpo.weights import loss_plan
    names = ["relevance", "sentiment", "brevity"]
    # labels_from's weight first, then the others (the family's target among them) in family order
    assert loss_plan(names, "relevance", [0.2, 0.6, 0.2], "sentiment") == ("sentiment", [0.6, 0.2, 0.2])
    assert loss_plan(names, "relevance", [0.1, 0.3, 0.6], "brevity") == ("brevity", [0.6, 0.1, 0.3])
    assert loss_plan(names, "relevance", [0.5, 0.5, 0.0], "relevance") == ("relevance", [0.5, 0.5, 0.0])
    assert loss_plan(names, "relevance", [0, 1, 0], "brevity") == ("sentiment", [1.0])  # a vertex stays DPO
    with pytest.raises(ValueError, match="target objective 'brevity' must get a weight > 0"):
        loss_plan(names, "relevance", [0.5, 0.5, 0.0], "brevity")
    with pytest.raises(ValueError, match="labels_from 'length' is not one of the objectives"):
        loss_plan(names, "relevance", [0.5, 0.5, 0.0], "length")


def test_loss_plan_all_trains_on_every_objectives_labels_in_family_order():
    from modpo.weights import loss_plan
    names = ["relevance", "sentiment", "brevity"]
    assert loss_plan(names, "relevance", [0.2, 0.6, 0.2], "all") == ("all", [0.2, 0.6, 0.2])
    assert loss_plan(names, "relevance", [0.0, 0.5, 0.5], "all") == ("all", [0.0, 0.5, 0.5])  # no divisor
    assert loss_plan(names, "relevance", [1, 0, 0], "all") == ("relevance", [1.0, 0.0, 0.0])  # vertices stay DPO
    assert loss_plan(names, "relevance", [0, 0, 1], "all") == ("brevity", [1.0])
    with pytest.raises(ValueError, match="summing to 1"):
        loss_plan(names, "relevance", [0.5, 0.6, 0.0], "all")
    with pytest.raises(ValueError, match="an objective is named 'all'"):
        loss_plan(["all", "brevity"], "all", [0.5, 0.5], "all")


def test_reorder_moves_one_objective_first_without_the_target_rule():
    from modpo.weights import reorder
    names = ["relevance", "sentiment", "brevity"]
    assert reorder(names, "brevity", [0.2, 0.8, 0.0]) == [0.0, 0.2, 0.8]  # a zero weight first is allowed here
    assert reorder(names, "sentiment", names) == ["sentiment", "relevance", "brevity"]
    with pytest.raises(ValueError, match="weights has 2 entries but the family has 3 objectives"):
        reorder(names, "brevity", [0.5, 0.5])
