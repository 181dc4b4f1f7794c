"""Dashboard page logic with streamlit's AppTest, on a real tiny-model family."""
import json
import shutil

import pytest
from app_helpers import plain
from streamlit.testing.v1 import AppTest

from dashboard import common
from modpo import family as fam
from modpo import jobs
from modpo.front import front_table


def front_script():
    from dashboard import front_page
    front_page.render()


def compare_script():
    from dashboard import compare_page
    compare_page.render()


def train_script():
    from dashboard import train_page
    train_page.render()


def run(script, **state):
    at = AppTest.from_function(script, default_timeout=120)
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    assert not at.exception, at.exception
    return at


def table_of(at):
    return at.dataframe[0].value


def test_front_page_shows_family_table_and_front(checkpoints):
    at = run(front_script)
    expected = front_table(fam.load_family(checkpoints / "tiny"))
    shown = table_of(at)
    assert sorted(shown["id"]) == sorted(expected["id"]) == ["base", "w-0.30-0.70", "w-0.70-0.30", "w-1.00-0.00"]
    assert dict(zip(shown["id"], shown["on front"])) == dict(zip(expected["id"], expected["on_front"]))
    assert at.metric[0].value == "4" and at.metric[1].value == str(int(expected["on_front"].sum()))
    assert any(m.label == "Hypervolume" for m in at.metric)


def test_no_family_and_broken_family_messages(tmp_path, checkpoints, monkeypatch):
    monkeypatch.setenv("MODPO_CHECKPOINTS", str(tmp_path / "empty"))
    at = run(front_script)
    assert "No families under" in at.info[0].value
    monkeypatch.setenv("MODPO_CHECKPOINTS", str(checkpoints))
    shutil.copytree(checkpoints / "tiny", checkpoints / "broken")
    data = json.loads((checkpoints / "broken" / "family.json").read_text())
    del data["objectives"]
    (checkpoints / "broken" / "family.json").write_text(json.dumps(data))
    at = run(front_script, family="broken")
    assert "cannot be loaded" in plain(at.error[0].value) and "'objectives' is missing" in plain(at.error[0].value)
    at.sidebar.selectbox(key="family_picker").select("tiny").run()
    assert not at.error and len(table_of(at)) == 4


def test_broken_adapter_is_skipped_with_a_warning(checkpoints):
    weights = checkpoints / "tiny" / "adapters" / "w-0.30-0.70" / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    at = run(front_script)
    assert "w-0.30-0.70" in plain(at.warning[0].value) and "truncated" in plain(at.warning[0].value)
    assert "w-0.30-0.70" not in set(table_of(at)["id"])


def test_chart_and_table_selection_feed_one_selection(checkpoints):
    at = run(front_script, _inject_front_chart={"selection": {"points": [
        {"customdata": "w-0.70-0.30", "curve_number": 1, "point_index": 0},
        {"customdata": ["w-1.00-0.00"], "curve_number": 1, "point_index": 1}]}})
    assert at.session_state["selection"]["tiny"]["selected"] == ["w-0.70-0.30", "w-1.00-0.00"]
    assert dict(zip(table_of(at)["id"], table_of(at)["selected"]))["w-0.70-0.30"]
    # a table selection replaces it (rows index the shown table)
    ids = list(table_of(at)["id"])
    at.session_state["front_table"] = {"selection": {"rows": [ids.index("base")], "columns": [], "cells": []}}
    at.run()
    assert at.session_state["selection"]["tiny"]["selected"] == ["base"]
    # the selection survives a figure change (front-only toggle, filters) and plain reruns
    at.toggle(key="front_only").set_value(True).run()
    at.run()
    assert at.session_state["selection"]["tiny"]["selected"] == ["base"]
    at.button(key="clear_selection").click().run()
    assert at.session_state["selection"]["tiny"]["selected"] == []


def test_with_clicks_adding_a_click_joins_the_selection(checkpoints):
    def click(point_id):
        return {"selection": {"points": [{"customdata": point_id, "curve_number": 1, "point_index": 0}]}}
    at = run(front_script, _inject_front_chart=click("w-0.70-0.30"))
    at.session_state["_inject_front_chart"] = click("base")
    at.run()
    assert at.session_state["selection"]["tiny"]["selected"] == ["base"], "by default a click replaces"
    at.toggle(key="click_adds").set_value(True).run()
    at.session_state["_inject_front_chart"] = click("w-0.70-0.30")
    at.run()
    assert at.session_state["selection"]["tiny"]["selected"] == ["base", "w-0.70-0.30"]
    ticked = table_of(at).set_index("id")["selected"]
    assert ticked["base"] and ticked["w-0.70-0.30"] and not ticked["w-1.00-0.00"]


def test_filters_and_front_only(checkpoints):
    at = run(front_script)
    table = table_of(at)
    lo, hi = at.sidebar.slider(key="filter_brevity").value
    cut = sorted(table["brevity"])[1]
    at.sidebar.slider(key="filter_brevity").set_value((cut, hi)).run()
    assert len(table_of(at)) == int((table["brevity"] >= cut).sum()) < len(table)
    at.sidebar.slider(key="filter_brevity").set_value((lo, hi)).run()
    at.sidebar.toggle(key="front_only").set_value(True).run()
    assert table_of(at)["on front"].all()


def test_compare_page_generates_side_by_side_on_tiny_model(checkpoints):
    state = {"selection": {"tiny": {"selected": ["w-0.70-0.30", "w-0.30-0.70"], "seen": {}}}}
    at = run(compare_script, **state)
    headers = [plain(m.value) for m in at.markdown]
    assert headers == ["**base**", "**w-0.70-0.30**", "**w-0.30-0.70**"], "base first, then by target weight"
    # the first held-out prompt has saved samples from evaluation: they show before any model loads
    assert len(at.text) == 3 and "_service_" + str(checkpoints / "tiny") not in at.session_state
    scored = [c for c in at.caption if "saved at evaluation" in plain(c.value)]
    assert len(scored) == 3 and all(
        "positivity: VADER compound, -1 to 1, higher is better; brevity: minus the word count, higher is better"
        in plain(c.proto.help) for c in scored), "each answer's scores say what they are and which way is better"
    at.radio(key="decoding").set_value("sample").run()
    assert len(at.text) == 0
    at.button(key="generate").click().run()
    service = at.session_state["_service_" + str(checkpoints / "tiny")]
    assert len(service.responses) == 3
    # what the columns show is what the service generated, base first, then by target weight
    cached = {pid: r["text"] for (pid, _, _), r in service.responses.items()}
    assert [t.value for t in at.text] == [cached["base"], cached["w-0.70-0.30"], cached["w-0.30-0.70"]]
    at.button(key="generate").click().run()
    assert len(service.responses) == 3, "cached responses are not generated again"


def test_compare_page_decodes_by_the_familys_rule_against_loops(checkpoints):
    """A family evaluated with no_repeat_ngram: the page says so, shows the saved answers (made by that rule) and
    generates new ones by it; a point saved without the rule is not shown as if it followed it."""
    import json

    from modpo.config import EvalSettings
    for eval_json in (checkpoints / "tiny").rglob("eval.json"):
        record = json.loads(eval_json.read_text())
        record["settings"]["no_repeat_ngram"] = 2
        if eval_json.parent.name == "w-0.30-0.70":
            record["settings"]["no_repeat_ngram"] = 0  # evaluated without the rule
        eval_json.write_text(json.dumps(record))
    state = {"selection": {"tiny": {"selected": ["w-0.70-0.30", "w-0.30-0.70"], "seen": {}}}}
    at = run(compare_script, **state)
    assert any("no answer repeats a run of 2 tokens" in plain(c.value) for c in at.caption)
    assert len([c for c in at.caption if "saved at evaluation" in plain(c.value)]) == 2, "base and w-0.70-0.30"
    at.radio(key="decoding").set_value("sample").run()
    at.button(key="generate").click().run()
    service = at.session_state["_service_" + str(checkpoints / "tiny")]
    settings = {s for (_, _, s) in service.responses}
    assert len(settings) == 1 and isinstance(next(iter(settings)), EvalSettings)
    assert next(iter(settings)).no_repeat_ngram == 2  # generate honours it: test_generate.py
    assert len(service.responses) == 3


def test_compare_page_rejects_long_prompt(checkpoints):
    state = {"selection": {"tiny": {"selected": ["w-0.70-0.30"], "seen": {}}}}
    at = run(compare_script, **state)
    at.radio(key="prompt_source").set_value("type your own").run()
    at.text_area(key="own_prompt").input("x" * 2001).run()
    assert "the limit is 2000" in at.error[0].value


@pytest.mark.parametrize("weights, message", [
    ((0.0, 0.0), "at least one weight must be > 0"),  # (0, 1) is DPO on brevity's labels: a valid vertex
])
def test_train_page_rejects_bad_weights(checkpoints, weights, message):
    before = fam.list_jobs(checkpoints / "tiny")
    at = run(train_script)
    at.number_input(key="w_positivity").set_value(weights[0])
    at.number_input(key="w_brevity").set_value(weights[1])
    at.button[0].click().run()
    assert message in plain(at.error[0].value)
    assert fam.list_jobs(checkpoints / "tiny") == before, "a rejected form must not queue a job"


@pytest.mark.slow
def test_train_page_runs_a_real_job_and_the_point_appears(checkpoints):
    root = checkpoints / "tiny"
    at = run(train_script)
    at.number_input(key="w_positivity").set_value(0.55)
    at.number_input(key="w_brevity").set_value(0.45)
    at.number_input(key="steps").set_value(3)
    at.button[0].click().run()
    assert "Started job" in at.success[0].value  # nothing else runs, so it starts at once
    job = [j for j in fam.list_jobs(root) if j.get("params")][0]
    status = jobs.wait(root, job["id"], timeout=300)
    assert status["state"] == "done", jobs.log_tail(root, job["id"])
    at.run()
    assert any(job["id"] in plain(e.label) and "done" in plain(e.label) for e in at.expander)
    family = fam.load_family(root)
    assert family.point("w-0.55-0.45").eval is not None
    front = run(front_script)
    assert "w-0.55-0.45" in set(table_of(front)["id"])


def test_selection_helpers():
    event = {"selection": {"points": [{"customdata": "a"}, {"customdata": ["b"]}, {"customdata": "a"}, {}]}}
    assert common.ids_from_chart_event(event) == ["a", "b"]
    assert common.ids_from_table_event({"selection": {"rows": [1, 5]}}, ["x", "y"]) == ["y"]
    state = {"selected": [], "seen": {}}
    assert common.apply_event(state, "chart", ["a"]) and state["selected"] == ["a"]
    assert not common.apply_event(state, "chart", ["a"]), "a replayed event changes nothing"
    assert common.apply_event(state, "table", ["c"]) and state["selected"] == ["c"]
    assert not common.apply_event(state, "chart", ["a"]) and state["selected"] == ["c"]
    assert not common.apply_event(state, "chart", []) and state["selected"] == ["c"], "empty events never clear"
    # a replayed table event whose row numbers now point at other rows changes nothing
    assert common.apply_event(state, "table", ["x"], fingerprint=(0,)) and state["selected"] == ["x"]
    assert not common.apply_event(state, "table", ["y"], fingerprint=(0,)) and state["selected"] == ["x"]


def test_preview_a_weighting_adds_merge_and_mix_points(checkpoints):
    at = run(front_script)
    for method in ("merge", "mix"):
        at.sidebar.number_input(key="preview_w_positivity").set_value(0.6)
        at.sidebar.number_input(key="preview_w_brevity").set_value(0.4)
        at.sidebar.radio(key="preview_method").set_value(method)
        next(b for b in at.sidebar.button if "Preview" in b.label).click().run()
        assert not at.error, at.error
    shown = table_of(at)
    kinds = dict(zip(shown["id"], shown["kind"]))
    assert kinds["merge-0.60-0.40"] == "merge" and kinds["mix-0.60-0.40"] == "mix"
    # an out-of-hull weighting is refused with a message, and nothing is added
    at.sidebar.number_input(key="preview_w_positivity").set_value(0.1)
    at.sidebar.number_input(key="preview_w_brevity").set_value(0.9)
    next(b for b in at.sidebar.button if "Preview" in b.label).click().run()
    assert "not a convex combination" in plain(at.error[0].value)
    # merged and mixed points compare like any adapter
    state = {"selection": {"tiny": {"selected": ["merge-0.60-0.40", "mix-0.60-0.40"], "seen": {}}}}
    cmp = run(compare_script, **state)
    cmp.radio(key="decoding").set_value("sample").run()
    cmp.button(key="generate").click().run()
    assert [plain(m.value) for m in cmp.markdown] == ["**base**", "**merge-0.60-0.40**", "**mix-0.60-0.40**"]
    assert len(cmp.text) == 3


def test_front_page_loads_no_model(checkpoints):
    """The front page reads JSON only: neither torch nor transformers is imported to draw it."""
    import subprocess
    import sys
    script = ("import sys; sys.path.insert(0, '.')\n"
              "from streamlit.testing.v1 import AppTest\n"
              "at = AppTest.from_file('dashboard/app.py', default_timeout=120); at.run()\n"
              "assert not at.exception, at.exception\n"
              "assert at.dataframe, 'the front table is missing'\n"
              "print('torch' in sys.modules, 'transformers' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-2:] == ["False", "False"]


def test_train_page_defaults_to_a_weighting_not_yet_trained(checkpoints):
    """Pressing Train with the defaults must not be refused as an existing point: the default is the
    widest gap between the trained weightings, with the family's recipe shown."""
    from modpo.weights import weights_id
    at = run(train_script)
    family = fam.load_family(checkpoints / "tiny")
    default = [at.number_input(key=f"w_{o}").value for o in family.spec.objective_names]
    assert abs(sum(default) - 1) < 1e-9 and default[family.spec.target_index] > 0
    assert weights_id(default) not in {p.id for p in family.points}
    assert any("beta 0.1" in plain(c.value) and "LoRA r 8" in plain(c.value) for c in at.caption)


def test_previews_toggle_counts_and_delete(checkpoints):
    """Previews count in Points / On the front / hypervolume until the toggle leaves them out; a preview
    can be deleted from the page, a trained point cannot."""
    at = run(front_script)
    at.sidebar.number_input(key="preview_w_positivity").set_value(0.6)
    at.sidebar.number_input(key="preview_w_brevity").set_value(0.4)
    at.sidebar.radio(key="preview_method").set_value("merge")
    next(b for b in at.sidebar.button if "Preview" in b.label).click().run()
    assert not at.error, at.error
    with_previews = int(at.metric[0].value)
    at.sidebar.toggle(key="include_previews").set_value(False).run()
    assert int(at.metric[0].value) == with_previews - 1
    assert "merge-0.60-0.40" not in set(table_of(at)["id"])
    at.sidebar.toggle(key="include_previews").set_value(True).run()
    at.sidebar.selectbox(key="delete_preview_id").set_value("merge-0.60-0.40")
    at.sidebar.button(key="delete_preview").click().run()
    assert "merge-0.60-0.40" not in {p.id for p in fam.load_family(checkpoints / "tiny").points}
    with pytest.raises(fam.FamilyError, match="not a preview"):
        fam.delete_preview(checkpoints / "tiny", "w-0.70-0.30")


def test_hypervolume_reference_zero_warning_and_reset(checkpoints):
    at = run(front_script)
    default = at.number_input(key="ref_brevity").value
    at.number_input(key="ref_brevity").set_value(1000.0).run()  # past every point: nothing is dominated
    assert float(next(m for m in at.metric if m.label == "Hypervolume").value) == 0
    assert any("hypervolume is 0" in plain(w.value) for w in at.warning)
    at.button(key="reset_reference").click().run()
    assert at.number_input(key="ref_brevity").value == default
    assert float(next(m for m in at.metric if m.label == "Hypervolume").value) > 0
    typed = at.number_input(key="ref_positivity").value - 0.5  # editing another box keeps the reset one
    at.number_input(key="ref_positivity").set_value(typed).run()
    assert at.number_input(key="ref_brevity").value == default and at.number_input(key="ref_positivity").value == typed


def test_the_reference_follows_the_filters_until_the_user_types_one(checkpoints):
    """A reference box still at its default takes the new default when a filter changes the worst shown
    value; one the user typed keeps the typed value."""
    at = run(front_script)
    default = at.number_input(key="ref_brevity").value
    lo, hi = at.sidebar.slider(key="filter_brevity").value
    at.sidebar.slider(key="filter_brevity").set_value((lo + 0.6 * (hi - lo), hi)).run()
    moved = at.number_input(key="ref_brevity").value
    assert moved > default, "the worst shown brevity rose, so the default reference follows it"
    at.number_input(key="ref_brevity").set_value(moved - 1.0).run()
    at.sidebar.slider(key="filter_brevity").set_value((lo, hi)).run()
    assert at.number_input(key="ref_brevity").value == moved - 1.0, "a typed reference stays"


def test_three_objectives_never_put_one_objective_on_both_axes(tmp_path, monkeypatch):
    """The demo's three objectives: the y axis offers every objective but the x axis's (one objective on both
    axes is no trade-off, and its two reference boxes would collide), and the front count says it counts all
    three objectives while the chart fades by its two."""
    root = tmp_path / "checkpoints"
    demo = common.REPO / "checkpoints" / "demo"
    shutil.copytree(demo, root / "demo", ignore=shutil.ignore_patterns("*.safetensors"))
    monkeypatch.setenv("MODPO_CHECKPOINTS", str(root))
    at = run(front_script)
    assert (at.selectbox(key="axis_x").value, at.selectbox(key="axis_y").value) == ("sentiment", "relevance")
    at.selectbox(key="axis_y").set_value("brevity").run()
    at.selectbox(key="axis_x").set_value("brevity").run()
    assert not at.exception, at.exception
    assert at.selectbox(key="axis_x").value == "brevity"
    assert at.selectbox(key="axis_y").value == "relevance" and "brevity" not in at.selectbox(key="axis_y").options
    count = next(m for m in at.metric if m.label == "On the front")
    assert "all 3 objectives" in count.help


def test_the_table_shows_dashes_and_the_weight_order(checkpoints):
    at = run(front_script)
    table = table_of(at)
    base = table[table["id"] == "base"].iloc[0]
    assert base["w (positivity, brevity)"] == "-" and base["steps"] == "-"


def test_table_ticks_follow_the_adapters_not_the_rows(checkpoints):
    """After a chart selection and a filter that moves rows, the ticked rows are exactly the selected adapters."""
    def ticked(at):
        rows = at.session_state["front_table"]["selection"]["rows"]
        return {table_of(at)["id"].iloc[r] for r in rows}

    table = table_of(run(front_script))
    on_front = table.loc[table["on front"], "id"].tolist()
    moved = [i for i in on_front if list(table["id"]).index(i) != on_front.index(i)]
    chosen = (moved or on_front)[-1]  # preferably a point whose row moves when the front-only filter is on
    at = run(front_script, _inject_front_chart={"selection": {"points": [{"customdata": chosen}]}})
    at.run()
    assert at.session_state["selection"]["tiny"]["selected"] == [chosen] and ticked(at) == {chosen}
    at.sidebar.toggle(key="front_only").set_value(True).run()
    at.run()
    assert ticked(at) == {chosen}, "the tick stayed on the row position instead of following the adapter"
    assert set(table_of(at).loc[table_of(at)["selected"], "id"]) == {chosen}


def test_time_left_from_the_pace_so_far():
    assert common.time_left(100.0, 10, 40, now=130.0) == ", about 2 min left"  # 3 s per step, 30 steps to go
    assert common.time_left(100.0, 10, 40, now=110.0) == ", about 30 s left"
    assert common.time_left(100.0, 0, 40, now=110.0) == "" and common.time_left(None, 5, 40) == ""
    assert common.time_left(1000.0, 1, 11, now=1060.0) == ", about 10 min left"
