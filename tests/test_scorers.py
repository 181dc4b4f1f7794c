"""modpo/scorers.py: scorers by name, with values checked by hand."""
import numpy as np
import pytest

from modpo.scorers import available_scorers, register_scorer, score


def test_word_counts_and_brevity_by_hand():
    responses = ["one two three", "  spaced   out  ", "x"]
    np.testing.assert_array_equal(score("words", ["p"] * 3, responses), [3, 2, 1])
    np.testing.assert_array_equal(score("brevity", ["p"] * 3, responses), [-3, -2, -1])


def test_sentiment_orders_positive_above_negative():
    s = score("sentiment", ["p"] * 3, ["I love this, it is wonderful!", "The box is on the table.",
                                       "This is awful and I hate it."])
    assert s[0] > 0.5 and abs(s[1]) < 0.1 and s[2] < -0.5


@pytest.mark.slow
def test_relevance_prefers_an_answer_on_topic():
    s = score("relevance", ["How do plants make food?"] * 2,
              ["Plants use sunlight, water and carbon dioxide to make sugar by photosynthesis.",
               "The stock market closed higher on Tuesday."])
    assert s[0] > s[1] + 0.2


def test_a_registered_scorer_is_used_by_name():
    register_scorer("test-exclamations", lambda: (lambda p, r: [x.count("!") for x in r]))
    assert "test-exclamations" in available_scorers()
    np.testing.assert_array_equal(score("test-exclamations", ["p", "p"], ["a!", "b!!"]), [1, 2])
    assert len(score("words", [], [])) == 0
