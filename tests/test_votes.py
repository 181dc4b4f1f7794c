"""Votes: the votes.jsonl record, its locked atomic append, reading a damaged file, votes as training data,
and the weighting estimate and next-pair suggestion built from them (modpo/votes.py, family.py)."""
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from modpo import family as fam
from modpo import votes as vt
from modpo.data import load_jsonl

SETTINGS = {"max_new_tokens": 48, "temperature": 0.0, "seed": 0, "trim_capped": True}


def answer(point_id, text, relevance=0.5, brevity=-10.0):
    return {"id": point_id, "text": text, "weights": {"relevance": 0.5, "brevity": 0.5}, "settings": SETTINGS,
            "scores": {"relevance": relevance, "brevity": brevity}}


def vote(label="left", left="w-a", right="w-b", prompt="Why is the sky blue?", session="s1", **kw):
    return vt.make_vote(prompt, [answer(left, f"answer of {left}", **kw), answer(right, f"answer of {right}")],
                        label, session)


def test_a_vote_is_a_preference_row_with_who_answered_and_how(tmp_path):
    record = vote("right")
    assert record["preferences"] == {"human": 1} and record["label"] == "right"
    assert [p["id"] for p in record["points"]] == ["w-a", "w-b"] and record["points"][0]["settings"] == SETTINGS
    assert record["scores"]["relevance"] == [0.5, 0.5]
    assert fam.append_vote(tmp_path, record) == 1
    assert fam.append_vote(tmp_path, vote("tie")) == 2
    votes, problems = fam.read_votes(tmp_path)
    assert problems == [] and [v["label"] for v in votes] == ["right", "tie"] and votes[1]["line"] == 2
    assert votes[0]["responses"] == record["responses"] and votes[0]["schema_version"] == 1
    rows = load_jsonl(fam.votes_file(tmp_path))  # the file is preference data as it stands
    assert rows.objectives == ["human"] and [r.preferences["human"] for r in rows.rows] == [1, None]
    with pytest.raises(ValueError, match="label must be one of"):
        vote("maybe")
    same = vt.make_vote("p", [answer("w-a", "same words"), answer("w-b", "same  words")], "left", "s")
    assert same["preferences"] == {"human": None}, "a preference between identical answers carries no label"


def test_votes_become_labels_of_a_named_objective(tmp_path):
    for label in ("left", "right", "both bad"):
        fam.append_vote(tmp_path, vote(label))
    data = vt.load_votes_file(fam.votes_file(tmp_path), objective="helpful")
    assert data.objectives == ["helpful"] and [r.preferences["helpful"] for r in data.rows] == [0, 1, None]
    assert [p.chosen for p in data.pairs("helpful")] == ["answer of w-a", "answer of w-b"]
    votes, _ = fam.read_votes(tmp_path)
    assert vt.votes_dataset(votes, "relevance").objectives == ["relevance"]  # or the family's target
    with pytest.raises(ValueError, match="no votes"):
        vt.votes_dataset([])


def _writer(root, n, tag):
    for i in range(n):
        fam.append_vote(root, vote(session=f"{tag}-{i}"))


def test_five_concurrent_writers_lose_no_vote(tmp_path):
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(tmp_path, 15, f"p{k}")) for k in range(5)]
    for p in procs:
        p.start()
    _writer(tmp_path, 10, "main")  # and one more writer in this process at the same time
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    votes, problems = fam.read_votes(tmp_path)
    assert problems == [] and len(votes) == 85
    assert len({v["session"] for v in votes}) == 85, "every vote is there exactly once"


def test_a_killed_writer_leaves_every_saved_vote_whole(tmp_path):
    code = ("import sys; sys.path.insert(0, %r); from test_votes import vote; from modpo import family as fam\n"
            "for i in range(100000):\n    n = fam.append_vote(%r, vote(session=str(i)))\n    print(n, flush=True)\n"
            % (os.path.dirname(__file__), str(tmp_path)))
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                             cwd=os.path.dirname(os.path.dirname(__file__)))
    saved = [int(child.stdout.readline()) for _ in range(30)]
    time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait(10)
    votes, problems = fam.read_votes(tmp_path)
    assert problems == [], "no torn line"
    assert len(votes) >= saved[-1], "every vote the writer reported saved is in the file"
    assert [v["session"] for v in votes] == [str(i) for i in range(len(votes))]


def test_a_damaged_votes_file_names_its_bad_lines_and_loses_nothing(tmp_path):
    fam.append_vote(tmp_path, vote(left="w-a"))
    path = fam.votes_file(tmp_path)
    good = path.read_text().splitlines()[0]
    wrong_type = json.loads(good) | {"label": 5}
    unknown = json.loads(good) | {"points": [{"id": "w-gone"}, {"id": "w-b"}]}
    lines = [good, good[:40], json.dumps(wrong_type), json.dumps(unknown), good]
    path.write_text("\n".join(lines))  # and the last line has no newline
    votes, problems = fam.read_votes(tmp_path, known_ids={"w-a", "w-b"})
    assert [v["line"] for v in votes] == [1, 5]
    assert len(problems) == 3
    assert "line 2" in problems[0] and "not valid JSON" in problems[0]
    assert "line 3" in problems[1] and "label" in problems[1]
    assert "line 4" in problems[2] and "w-gone" in problems[2]
    fam.append_vote(tmp_path, vote(label="right"))
    after = path.read_text().splitlines()
    assert after[:5] == lines, "the bad lines are kept byte for byte"
    votes, problems = fam.read_votes(tmp_path, known_ids={"w-a", "w-b"})
    assert [v["line"] for v in votes] == [1, 5, 6] and len(problems) == 3


def test_a_votes_file_that_is_a_link_out_of_the_family_is_refused(tmp_path):
    (tmp_path / "fam" / "data").mkdir(parents=True)
    (tmp_path / "elsewhere.jsonl").write_text("")
    (tmp_path / "fam" / "data" / "votes.jsonl").symlink_to(tmp_path / "elsewhere.jsonl")
    with pytest.raises(fam.FamilyError, match="outside the family"):
        fam.append_vote(tmp_path / "fam", vote())


def pool_and_points():
    """Answers of three points to four prompts; point 'r' is the most relevant, 'b' the briefest."""
    points = []
    for pid, (rel, brev) in {"r": (0.9, -30.0), "b": (0.3, -8.0), "m": (0.6, -18.0)}.items():
        samples = [{"prompt": f"p{k}", "response": f"{pid} answers p{k}",
                    "scores": {"relevance": rel + 0.01 * k, "brevity": brev - k}} for k in range(4)]
        points.append(SimpleNamespace(id=pid, eval={"samples": samples}, weights=None))
    return points, vt.answer_pool(points, ["relevance", "brevity"])


def test_votes_for_relevant_answers_move_the_estimate_to_relevance():
    points, pool = pool_and_points()
    assert len(pool) == 12 and len(vt.candidate_pairs(pool)) == 12
    by = {(a["id"], a["prompt"]): a for a in pool}
    votes = []
    for k in range(4):  # the user always prefers the more relevant answer, whatever its length
        for winner, loser in (("r", "b"), ("r", "m"), ("m", "b")):
            a, b = by[(winner, f"p{k}")], by[(loser, f"p{k}")]
            votes.append(vt.make_vote(a["prompt"], [answer(a["id"], a["text"], a["scores"]["relevance"],
                                                           a["scores"]["brevity"]),
                                                    answer(b["id"], b["text"], b["scores"]["relevance"],
                                                           b["scores"]["brevity"])], "left", "s"))
    votes.append(vote("both bad"))
    prior = vt.estimate_weighting(["relevance", "brevity"], [True, True], [], pool)
    est = vt.estimate_weighting(["relevance", "brevity"], [True, True], votes, pool)
    assert prior.weights["relevance"] == pytest.approx(0.5)
    assert est.weights["relevance"] > 0.8 and est.votes_used == 12
    assert est.sd["relevance"] < prior.sd["relevance"]
    assert len(est.problems) == 1 and "both bad" in est.problems[0]
    asked = {vt.pair_key("p0", ("r", "b"))}
    suggestion = vt.suggest_pair(prior, pool, asked)
    assert suggestion["prompt"] in {"p0", "p1", "p2", "p3"} and suggestion["gain"] > 0
    assert vt.pair_key(suggestion["prompt"], suggestion["ids"]) not in asked
    everything = {vt.pair_key(pool[i]["prompt"], (pool[i]["id"], pool[j]["id"])) for i, j in vt.candidate_pairs(pool)}
    assert vt.suggest_pair(prior, pool, everything) is None
    np.testing.assert_allclose(prior.scale, np.array([[a["scores"][k] for k in ("relevance", "brevity")]
                                                      for a in pool]).std(0))


def vote_by_positivity(root) -> int:
    """Cast a vote on every pair of the family's saved answers whose positivity differs, for the more
    positive answer; returns how many."""
    family = fam.load_family(root)
    pool = vt.answer_pool(family.points, family.spec.objective_names)
    cast = 0
    for i, j in vt.candidate_pairs(pool):
        a, b = pool[i], pool[j]
        if a["scores"]["positivity"] == b["scores"]["positivity"]:
            continue
        label = "left" if a["scores"]["positivity"] > b["scores"]["positivity"] else "right"
        fam.append_vote(root, vt.make_vote(a["prompt"], [
            {"id": a["id"], "text": a["text"], "weights": a["weights"], "settings": SETTINGS, "scores": a["scores"]},
            {"id": b["id"], "text": b["text"], "weights": b["weights"], "settings": SETTINGS, "scores": b["scores"]}],
            label, "test"))
        cast += 1
    return cast


def test_a_family_trained_on_votes_shows_the_human_objective_on_the_front(tiny_checkpoints, tmp_path):
    """Votes cast on the tiny family's saved answers (this user prefers the more positive answer) train a
    new family whose target is 'human', evaluated by the utility fitted to the votes."""
    import shutil

    from modpo.cli import main
    from modpo.front import front_table
    from modpo.scorers import parse_linear, score
    root = tmp_path / "checkpoints"
    shutil.copytree(tiny_checkpoints / "tiny", root / "tiny")
    family = fam.load_family(root / "tiny")
    pool = vt.answer_pool(family.points, family.spec.objective_names)
    cast = vote_by_positivity(root / "tiny")
    assert cast >= 8
    (tmp_path / "eval.json").write_text(json.dumps(sorted({a["prompt"] for a in pool})[:4]))
    assert main(["sweep", "--family", str(root / "mine"), "--data", str(fam.votes_file(root / "tiny")),
                 "--model", "tiny", "--objectives", "human:maximize:votes,brevity:maximize:brevity",
                 "--target", "human", "--margin", "brevity=explicit:0.02", "--weights", "0.5,0.5",
                 "--lora-r", "4", "--lora-alpha", "8", "--steps", "2", "--max-new-tokens", "16",
                 "--eval-prompts", str(tmp_path / "eval.json")]) == 0
    mine = fam.load_family(root / "mine")
    human = mine.spec.objectives[0]
    assert human.name == "human" and human.scorer.startswith("linear:")
    assert set(dict(parse_linear(human.scorer))) == {"sentiment", "brevity"}
    assert mine.spec.data["votes"]["votes_used"] == cast
    votes, _ = fam.read_votes(root / "tiny")
    utility = score(human.scorer, [v["prompt"] for v in votes for _ in (0, 1)],
                    [t for v in votes for t in v["responses"]])
    winners = [utility[2 * k] > utility[2 * k + 1] if v["label"] == "left" else utility[2 * k + 1] > utility[2 * k]
               for k, v in enumerate(votes)]
    assert all(winners), "the fitted utility prefers every answer the user voted for"
    table = front_table(mine)
    assert {"human", "brevity"} <= set(table.columns) and table["human"].notna().sum() >= 3
    assert len(table) >= 3 and table["on_front"].any()


def test_train_data_votes_trains_one_weighting_into_a_new_family_then_one_more(tiny_checkpoints, tmp_path, capsys):
    """`train --data <family>/data/votes.jsonl` trains the weighting asked for (and the DPO end every new
    family starts from) in a new family built as the Train page builds one (the votes label the target
    here), with the flags given over the voted family's recipe; run again on that family it adds a
    weighting from the stored votes. Wrong inputs are refused with what to do."""
    import shutil

    from modpo.cli import main
    root = tmp_path / "checkpoints"
    shutil.copytree(tiny_checkpoints / "tiny", root / "tiny")
    cast = vote_by_positivity(root / "tiny")
    votes = str(fam.votes_file(root / "tiny"))
    common = ["--data", votes, "--votes-objective", "positivity", "--steps", "2", "--lora-r", "4",
              "--lora-alpha", "8", "--max-new-tokens", "16", "--eval-limit", "3"]
    assert main(["train", "--family", str(root / "mine"), "--weights", "0.5,0.5", *common]) == 0
    mine = fam.load_family(root / "mine")
    assert mine.spec.target == "positivity" and [o.name for o in mine.spec.objectives] == ["positivity", "brevity"]
    assert Path(mine.spec.data["source"]).resolve() == Path(votes).resolve()
    assert mine.spec.data["votes"]["objective"] == "positivity" and mine.spec.data["rows"] == cast
    assert mine.spec.margins["brevity"] == {"kind": "explicit", "scale": 0.02, "scorer": "brevity"}
    trained = [p for p in mine.points if p.kind != "base"]
    assert sorted(p.id for p in trained) == ["w-0.50-0.50", "w-1.00-0.00"] and all(p.eval for p in trained), \
        "the weighting asked for, and the DPO end on the votes that every new family starts from"
    recipe = fam.family_recipe(mine)
    assert recipe["lora_r"] == 4 and recipe["max_steps"] == 2, "the flags given win over the voted family's recipe"
    assert recipe["learning_rate"] == fam.family_recipe(fam.load_family(root / "tiny"))["learning_rate"]

    assert main(["train", "--family", str(root / "mine"), "--weights", "0.8,0.2", *common]) == 0
    assert sorted(p.id for p in fam.load_family(root / "mine").points if p.kind != "base") == [
        "w-0.50-0.50", "w-0.80-0.20", "w-1.00-0.00"]

    capsys.readouterr()
    assert main(["train", "--family", str(root / "other"), "--weights", "0.5,0.5", "--data", votes]) == 2
    assert "cannot be an explicit margin" in capsys.readouterr().err  # human: positivity has no reward scale
    assert main(["train", "--family", str(root / "other"), "--weights", "0.2,0.3,0.5", *common]) == 2
    assert "in this order: positivity, brevity" in capsys.readouterr().err
    assert main(["train", "--family", str(root / "tiny"), "--weights", "0.5,0.5", *common]) == 2
    assert "Give a new --family folder" in capsys.readouterr().err
    assert main(["train", "--family", str(root / "mine"), "--weights", "0.6,0.4", "--data", votes,
                 "--votes-objective", "human"]) == 2
    assert "votes label 'positivity', not 'human'" in capsys.readouterr().err
    assert main(["train", "--family", str(root / "other"), "--weights", "0.5,0.5", "--no-eval", *common]) == 2
    assert "--no-eval: a new family's first points are evaluated" in capsys.readouterr().err
    prefs = tmp_path / "prefs.jsonl"
    prefs.write_text("")
    assert main(["train", "--family", str(root / "other"), "--weights", "0.5,0.5", "--data", str(prefs)]) == 2
    assert "only a family's data/votes.jsonl" in capsys.readouterr().err
    assert not (root / "other").exists(), "a refused run leaves no folder"


def test_a_pool_larger_than_the_shortlist_suggests_among_its_widest_pairs(monkeypatch):
    """Many saved answers (one per held-out prompt for every point): the gain is computed over the
    choose.MAX_CANDIDATES widest pairs only, so a suggestion stays fast; here the shortlist is 3 pairs."""
    from modpo import choose
    points, pool = pool_and_points()
    prior = vt.estimate_weighting(["relevance", "brevity"], [True, True], [], pool)
    seen = []
    real_gain = vt.information_gain
    monkeypatch.setattr(vt, "widest_pairs", lambda d: choose.widest_pairs(d, limit=3))
    monkeypatch.setattr(vt, "information_gain", lambda post, d: seen.append(len(d)) or real_gain(post, d))
    suggestion = vt.suggest_pair(prior, pool)
    assert seen == [3]
    assert set(suggestion["ids"]) == {"r", "b"}, "the widest pairs are r against b (most apart on both objectives)"


def test_a_point_repeating_a_prompt_in_its_saved_answers_adds_it_once():
    """A stranger's eval.json listing one prompt thousands of times must not make the pairs quadratic in it."""
    points, _ = pool_and_points()
    points[0].eval["samples"] = points[0].eval["samples"] + [dict(points[0].eval["samples"][0],
                                                                  response=f"copy {n}") for n in range(5000)]
    pool = vt.answer_pool(points, ["relevance", "brevity"])
    assert len(pool) == 12 and len(vt.candidate_pairs(pool)) == 12
    assert [a["text"] for a in pool if a["id"] == "r" and a["prompt"] == "p0"] == ["r answers p0"]
