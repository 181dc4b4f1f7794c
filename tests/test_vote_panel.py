"""Votes on the Compare page and the weighting they point to, with streamlit's AppTest on the tiny family:
vote, blind vote, pinned baseline and word diff, damaged votes files, the Front page's estimate and
its suggested pair."""
import json

from app_helpers import plain
from test_dashboard import compare_script, front_script, run

from dashboard import compare_page
from modpo import family as fam
from modpo.config import EvalSettings

PAIR = ["w-0.70-0.30", "w-0.30-0.70"]


def selected(*ids):
    return {"selection": {"tiny": {"selected": list(ids), "seen": {}}}}


def votes_of(checkpoints):
    return fam.read_votes(checkpoints / "tiny")


def texts(at):
    return [t.value for t in at.text]


def test_a_vote_is_saved_at_once_with_who_answered(checkpoints):
    at = run(compare_script, **selected(*PAIR))
    prompt = at.selectbox(key="held_out_prompt").value
    assert at.selectbox(key="vote_left").value == "base" and at.selectbox(key="vote_right").value == "w-0.70-0.30"
    at.selectbox(key="vote_right").set_value("w-0.30-0.70").run()
    shown = dict(zip(["base", "w-0.70-0.30", "w-0.30-0.70"], texts(at)))
    at.button(key="cast_right").click().run()
    assert not at.exception
    votes, problems = votes_of(checkpoints)
    assert problems == [] and len(votes) == 1
    v = votes[0]
    assert v["label"] == "right" and v["preferences"] == {"human": 1} and v["prompt"] == prompt
    assert [p["id"] for p in v["points"]] == ["base", "w-0.30-0.70"]
    assert v["responses"] == [shown["base"], shown["w-0.30-0.70"]] and v["blind"] is False
    assert v["points"][1]["weights"] == {"positivity": 0.3, "brevity": 0.7}
    assert v["points"][0]["settings"]["max_new_tokens"] == 24 and set(v["scores"]) == {"positivity", "brevity"}
    assert "Saved vote 1" in plain(at.success[0].value)
    assert any("Your weighting from 1 vote" in plain(c.value) for c in at.caption)
    at.button(key="cast_tie").click().run()
    assert [v["label"] for v in votes_of(checkpoints)[0]] == ["right", "tie"]
    assert votes_of(checkpoints)[0][0]["session"] == votes_of(checkpoints)[0][1]["session"], "one session id"


def test_blind_votes_hide_who_answered_until_cast_and_move_on(checkpoints):
    at = run(compare_script, **selected(*PAIR))
    at.toggle(key="blind").set_value(True).run()
    ids = ["base", *PAIR]
    headers = " ".join(plain(m.value) for m in at.markdown)
    assert "Answer A" in headers and "Answer B" in headers
    assert not any(i in headers for i in ids), "no id on screen in blind mode"
    assert not any("positivity" in plain(c.value) for c in at.caption), "no weights or scores either"
    estimates = []
    for round_ in range(3):
        a_text = texts(at)[0]
        at.button(key="cast_left").click().run()
        assert not at.exception
        votes, _ = votes_of(checkpoints)
        assert len(votes) == round_ + 1 and votes[-1]["blind"] is True and votes[-1]["responses"][0] == a_text
        revealed = plain(at.success[0].value)
        assert f"A was {votes[-1]['points'][0]['id']}, B was {votes[-1]['points'][1]['id']}" in revealed
        estimates.append([plain(c.value) for c in at.caption if "Your weighting from" in plain(c.value)][0])
        asked = {(v["prompt"], tuple(sorted(p["id"] for p in v["points"]))) for v in votes}
        pair = at.session_state["votes"]["tiny"]["pair"]
        assert pair and (pair["prompt"], tuple(sorted(pair["ids"]))) not in asked, "the next pair is a new one"
        assert at.selectbox(key="held_out_prompt").value == pair["prompt"]
    assert len(set(estimates)) > 1, "the estimate moves with the votes"


def test_pinned_baseline_stays_and_words_diff_against_it(checkpoints):
    at = run(compare_script, **selected(*PAIR))
    at.selectbox(key="baseline").set_value("w-1.00-0.00").run()
    headers = [plain(m.value) for m in at.markdown]
    assert headers[0] == "**w-1.00-0.00** · pinned baseline"
    at.multiselect(key="compare_ids").set_value(["w-0.30-0.70"]).run()
    assert [plain(m.value) for m in at.markdown][:2] == ["**w-1.00-0.00** · pinned baseline", "**base**"]
    family = fam.load_family(checkpoints / "tiny")
    saved = {p: {s["prompt"]: s["response"] for s in family.point(p).eval["samples"]} for p in ("w-1.00-0.00", "base")}
    differ = [q for q in saved["base"] if saved["base"][q].split() != saved["w-1.00-0.00"][q].split()]
    assert differ, "the fixture's answers differ on some held-out prompt"
    at.selectbox(key="held_out_prompt").set_value(differ[0]).run()
    at.toggle(key="diff").set_value(True).run()
    base_text, other = texts(at)[0], texts(at)[1]
    diffs = [m.value for m in at.markdown if "-background[" in m.value]
    others = [t for t in texts(at)[1:] if t.split() != base_text.split()]
    assert len(diffs) == len(others) >= 1, "every column that differs shows its word diff from the baseline"
    words = compare_page.word_diff(base_text, other)
    assert diffs[0] == compare_page.diff_markdown(base_text, other) and {op for op, _ in words} > {"same"}


def test_word_diff_and_its_markdown_are_inert():
    assert compare_page.word_diff("the cat sat", "the dog sat down") == [
        ("same", "the"), ("removed", "cat"), ("added", "dog"), ("same", "sat"), ("added", "down")]
    md = compare_page.diff_markdown("hello", "hello [click](http://evil) <b>x</b> :red[y]")
    assert "](http" not in md and "<b>" not in md and ":red[" not in md
    assert md.startswith("hello :green-background[")


def test_a_saved_answer_is_recorded_with_the_settings_that_made_it():
    """A vote or a download names how each answer was made: the page's settings for a generated answer, the
    evaluation's recorded ones for an answer saved at evaluation (there the page's batch size did not apply)."""
    from types import SimpleNamespace

    from dashboard import common
    recorded = {"max_new_tokens": 48, "temperature": 0.0, "seed": 0, "batch_size": 64, "trim_capped": True}
    point = SimpleNamespace(id="w-1", eval={"settings": recorded})
    page = EvalSettings(max_new_tokens=48, batch_size=32, trim_capped=True)
    saved = common.answer_settings(point, {"text": "a", "source": common.SAVED}, page)
    generated = common.answer_settings(point, {"text": "a", "source": "generated"}, page)
    assert saved["batch_size"] == 64 and generated["batch_size"] == 32
    assert set(saved) == set(generated) and saved["max_new_tokens"] == generated["max_new_tokens"] == 48


def test_capped_answers_are_marked_and_downloads_carry_everything(checkpoints):
    trimmed = EvalSettings(max_new_tokens=24, trim_capped=True)
    assert "hit the 24-token cap, shown to its last complete sentence" in compare_page.cap_note({"capped": True},
                                                                                                 trimmed)
    assert compare_page.cap_note({"capped": False}, trimmed) == ""
    family = fam.load_family(checkpoints / "tiny")
    # the saved answers show where the page's settings are the evaluation's (the tiny family trims nothing)
    assert compare_page.answer_of(family.point("base"), family.point("base").eval["samples"][0]["prompt"],
                                  trimmed, None) is None
    settings = EvalSettings(max_new_tokens=24)
    points = [family.point("base"), family.point("w-0.70-0.30")]
    prompt = family.point("base").eval["samples"][0]["prompt"]
    answers = {p.id: compare_page.answer_of(p, prompt, settings, None) for p in points}
    rows = compare_page.shown_answers(points, prompt, settings, answers)
    assert [r["id"] for r in rows] == ["base", "w-0.70-0.30"]
    assert rows[1]["weights"] == {"positivity": 0.7, "brevity": 0.3} and rows[1]["settings"]["max_new_tokens"] == 24
    assert rows[1]["answer"] == family.point("w-0.70-0.30").eval["samples"][0]["response"]
    assert set(rows[0]["scores"]) == {"positivity", "brevity"} and rows[0]["capped"] in (True, False)
    json.dumps(rows)  # JSON as it is downloaded


def test_generated_answers_that_hit_the_cap_say_so(checkpoints):
    at = run(compare_script, **selected("w-0.70-0.30"))
    at.slider(key="max_new_tokens").set_value(3).run()
    at.button(key="generate").click().run()
    assert not at.exception
    notes = [plain(c.value) for c in at.caption if "token cap" in plain(c.value)]
    assert len(notes) == 2, "both 3-token answers hit the cap"


def test_a_damaged_votes_file_is_named_and_new_votes_still_land(checkpoints):
    path = fam.votes_file(checkpoints / "tiny")
    path.parent.mkdir(exist_ok=True)
    path.write_text('{"prompt": "cut sho\n{"label": 3}\n')
    at = run(compare_script, **selected(*PAIR))
    warnings = " ".join(plain(w.value) for w in at.warning)
    assert "votes.jsonl line 1" in warnings and "votes.jsonl line 2" in warnings
    at.button(key="cast_left").click().run()
    assert path.read_text().splitlines()[:2] == ['{"prompt": "cut sho', '{"label": 3}']
    assert len(votes_of(checkpoints)[0]) == 1


def test_front_page_shows_the_estimate_and_opens_the_suggested_pair(checkpoints):
    at = run(front_script)
    assert any("No votes yet" in plain(c.value) for c in at.caption)
    at.button(key="suggested_pair").click().run()
    pending = at.session_state["_pending_pair"]
    assert pending["family"] == "tiny" and len(set(pending["ids"])) == 2
    # the Compare page opens on that prompt with the pair up for a vote
    compare = run(compare_script, _pending_pair=pending, **selected())
    assert compare.selectbox(key="held_out_prompt").value == pending["prompt"]
    shown = [plain(m.value).strip("*") for m in compare.markdown]
    assert set(pending["ids"]) <= set(shown)
    assert [compare.selectbox(key="vote_left").value, compare.selectbox(key="vote_right").value] == pending["ids"]
    compare.button(key="cast_left").click().run()
    at.run()
    assert any("From 1 vote(s)" in plain(c.value) for c in at.caption)
    assert any("Nearest point" in plain(c.value) for c in at.caption)
    assert at.get("plotly_chart"), "the weights chart is drawn"


def train_script():
    from dashboard import train_page
    train_page.render()


def test_the_train_page_trains_a_new_family_on_the_votes(checkpoints):
    """Votes as the target's labels: the Train page starts a background sweep of a new family whose points
    are trained on the votes and evaluated like any family."""
    from modpo import jobs
    from modpo import votes as vt
    root = checkpoints / "tiny"
    at = run(train_script)
    assert any("0 decisive" in e.label for e in at.expander)
    family = fam.load_family(root)
    pool = vt.answer_pool(family.points, family.spec.objective_names)
    for i, j in vt.candidate_pairs(pool)[:8]:
        a, b = pool[i], pool[j]
        label = "left" if a["scores"]["positivity"] >= b["scores"]["positivity"] else "right"
        fam.append_vote(root, vt.make_vote(a["prompt"], [{**a, "settings": {}}, {**b, "settings": {}}], label, "test"))
    at.run()
    # the tiny family's target has no reward scale, so it cannot become a margin of a new objective: the form
    # offers only what can run here, and says why, and that 8 decisive votes are few
    assert at.radio(key="votes_as").options == ["the target"]
    assert any("cannot label a new objective" in plain(c.value) and "positivity" in plain(c.value) for c in at.caption)
    assert any("Only 8 decisive vote(s)" in plain(w.value) for w in at.warning)
    at.radio(key="votes_as").set_value("the target")
    at.number_input(key="votes_steps").set_value(2)
    at.select_slider(key="votes_grid").set_value(1.0)
    at.button[[b.label for b in at.button].index("Train on the votes")].click().run()
    assert not at.error, [e.value for e in at.error]
    assert "Started family tiny-votes" in plain(at.success[0].value)
    for child in list(jobs._children.values()):
        child.wait(600)
    mine = fam.load_family(checkpoints / "tiny-votes")
    assert mine.spec.target == "positivity" and mine.spec.data["votes"]["objective"] == "positivity"
    assert mine.spec.margins["brevity"]["kind"] == "explicit" and mine.spec.margins["brevity"]["scale"] == 0.02
    trained = [p for p in mine.points if p.kind != "base"]
    assert trained and all(p.eval for p in trained), (checkpoints / "tiny-votes" / "votes-sweep.log").read_text()
    again = run(train_script)
    again.button[[b.label for b in again.button].index("Train on the votes")].click().run()
    assert "already exists" in plain(again.error[0].value)
