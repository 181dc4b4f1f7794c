"""modpo/coherence.py: degenerate and off-topic answers are found, and a family's points are judged."""
import json

import pytest

from modpo import family as fam
from modpo.cli import main
from modpo.coherence import default_prompts, is_loop, judge


def test_loops_and_short_and_repeated_answers_are_degenerate():
    assert is_loop("the cat sat the cat sat the cat sat down")
    assert not is_loop("Plants use light to turn water and air into sugar.")
    prompts = ["How do plants make food?", "Why does bread go stale?", "How do bees fly?", "What is rain?"]
    answers = ["Plants use sunlight, water and carbon dioxide to make sugar.", "Ok.",
               "The Unseen Light", "The Unseen Light"]
    r = judge(prompts, answers)
    assert [a["degenerate"] for a in r["answers"]] == [False, True, False, False]  # repeats need 3 prompts
    r = judge(prompts, answers[:2] + ["The Unseen Light"] * 2 + [])
    assert r["degenerate"] == 0.25
    r = judge(prompts[:3], ["The Unseen Light"] * 3)
    assert r["degenerate"] == 1.0


@pytest.mark.slow
def test_off_topic_answers_are_found_by_relevance():
    r = judge(["How do plants make food?", "How do plants make food?"],
              ["Plants make sugar from sunlight, water and carbon dioxide in their leaves.",
               "The quarterly earnings call is scheduled for Tuesday at noon."])
    assert r["answers"][0]["relevance"] > 0.5 and r["off_topic"] == 0.5


def test_the_shipped_prompts_are_apart_from_the_demo_prompts():
    from importlib import resources
    demo = json.loads(resources.files("modpo").joinpath("assets/demo_prompts.json").read_text())
    prompts = default_prompts()
    assert len(prompts) >= 24 and not set(prompts) & set(demo["train"] + demo["eval"])


def test_the_cli_judges_every_point_of_a_family(tiny_checkpoints, tmp_path, capsys):
    root = tiny_checkpoints / "tiny"
    prompts = tmp_path / "p.json"
    prompts.write_text(json.dumps(["tell me about owls", "tell me about boats", "tell me about snow"]))
    out = tmp_path / "r.json"
    assert main(["coherence", "--family", str(root), "--prompts", str(prompts), "--json", str(out)]) == 0
    report = json.loads(out.read_text())["points"]
    assert set(report) == {p.id for p in fam.load_family(root).points}
    assert report["base"]["relevance_vs_base"] == 1.0
    assert all(len(r["answers"]) == 3 and 0 <= r["bad"] <= 1 for r in report.values())
    assert "relevance" in capsys.readouterr().out
