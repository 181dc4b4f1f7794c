"""The front figure (modpo.plots), from a hand-made front table: what is drawn where, and labelled how."""
import numpy as np
import pandas as pd

from modpo.plots import DOMINATED_HERE, front_figure


def table() -> pd.DataFrame:
    rows = [  # id, kind, a, b: w-0.50 is dominated by w-0.80 on both objectives
        ("base", "base", 0.4, -30.0), ("w-0.00-1.00", "modpo", 0.1, -14.0),
        ("w-0.50-0.50", "modpo", 0.2, -20.0), ("w-0.80-0.20", "modpo", 0.3, -18.0)]
    t = pd.DataFrame(rows, columns=["id", "kind", "a", "b"])
    t["a_stderr"], t["b_stderr"], t["evaluated"] = 0.05, 1.0, True
    return t


def traces_by_name(fig) -> dict:
    return {tr.name: tr for tr in fig.data}


def test_front_line_joins_the_non_dominated_points_and_dominated_ones_are_apart():
    fig = front_figure(table(), ["a", "b"], {"a": True, "b": True}, x="b", y="a")
    traces = traces_by_name(fig)
    line = traces["Pareto front"]
    assert sorted(zip(line.x, line.y)) == [(-30.0, 0.4), (-18.0, 0.3), (-14.0, 0.1)]
    assert list(traces["MODPO adapter" + DOMINATED_HERE].customdata) == ["w-0.50-0.50"]
    assert sorted(traces["MODPO adapter"].customdata) == ["w-0.00-1.00", "w-0.80-0.20"]


def test_adapters_are_labelled_only_when_asked():
    plain = traces_by_name(front_figure(table(), ["a", "b"], {"a": True, "b": True}, x="b", y="a"))
    assert set(plain["MODPO adapter"].text) == {""} and list(plain["base model"].text) == ["base"]
    labelled = traces_by_name(front_figure(table(), ["a", "b"], {"a": True, "b": True}, x="b", y="a", label_all=True))
    assert sorted(labelled["MODPO adapter"].text) == ["w-0.00-1.00", "w-0.80-0.20"]
    assert "text" in labelled["MODPO adapter"].mode
    np.testing.assert_allclose(labelled["MODPO adapter"].error_y.array, [0.05, 0.05])


def test_axis_titles_say_what_the_numbers_are():
    import pandas as pd

    from modpo.plots import front_figure
    from modpo.scorers import meaning
    table = pd.DataFrame([{"id": "base", "kind": "base", "w_a": None, "w_b": None, "a": 1.0, "a_stderr": 0.1,
                           "b": -3.0, "b_stderr": 0.1, "kl": 0.0, "steps": None, "evaluated": True}])
    fig = front_figure(table, ["a", "b"], {"a": True, "b": True}, "b", "a",
                       meanings={"a": meaning("sentiment"), "b": meaning("brevity")})
    assert fig.layout.xaxis.title.text == "b: minus the word count (→ better)"
    assert fig.layout.yaxis.title.text == "a: VADER compound, -1 to 1 (↑ better)"


def test_a_selected_dominated_point_is_opaque_and_the_reference_is_drawn():
    import pandas as pd

    from modpo.plots import front_figure
    rows = [{"id": i, "kind": "modpo", "w_a": w, "w_b": 1 - w, "a": a, "a_stderr": 0.1, "b": b, "b_stderr": 0.1,
             "kl": 0.1, "steps": 3, "evaluated": True} for i, w, a, b in
            [("top", 0.7, 1.0, 1.0), ("low", 0.3, 0.5, 0.5), ("other", 0.5, 0.4, 0.4)]]
    fig = front_figure(pd.DataFrame(rows), ["a", "b"], {"a": True, "b": True}, "b", "a", selected=["low"],
                       reference=(0.0, 0.0))
    dominated = next(t for t in fig.data if t.name and t.name.endswith(DOMINATED_HERE))
    opacity = dict(zip(dominated.customdata, dominated.marker.opacity))
    assert opacity == {"low": 1.0, "other": 0.35}
    ref = next(t for t in fig.data if t.name == "hypervolume reference")
    assert (ref.x[0], ref.y[0]) == (0.0, 0.0)


def three_objectives() -> pd.DataFrame:
    rows = [("base", "base", 0.5, 0.2, -30.0, None, None, None),
            ("w-1.00-0.00-0.00", "modpo", 0.7, 0.1, -28.0, 1.0, 0.0, 0.0),
            ("w-0.00-1.00-0.00", "modpo", 0.4, 0.6, -33.0, 0.0, 1.0, 0.0),
            ("w-0.00-0.00-1.00", "modpo", 0.45, 0.0, -12.0, 0.0, 0.0, 1.0)]
    t = pd.DataFrame(rows, columns=["id", "kind", "r", "s", "b", "w_r", "w_s", "w_b"])
    for o in "rsb":
        t[f"{o}_stderr"] = 0.01
    t["evaluated"] = True
    return t


def test_pairwise_projections_draw_every_pair_with_its_own_front_and_one_legend():
    from modpo.plots import pairwise_figure
    fig = pairwise_figure(three_objectives(), ["r", "s", "b"], {"r": True, "s": True, "b": False},
                          meanings={"b": "minus the word count"})
    axes = sorted({(tr.xaxis, tr.yaxis) for tr in fig.data})
    assert axes == [("x", "y"), ("x2", "y2"), ("x3", "y3")]  # (r, s), (r, b), (s, b)
    assert fig.layout.xaxis3.title.text == "b: minus the word count (← better)"
    assert fig.layout.yaxis3.title.text == "s (↑ better)"
    front_lines = [tr for tr in fig.data if tr.name == "Pareto front"]
    assert len(front_lines) == 3 and sum(tr.showlegend for tr in front_lines) == 1
    # on (s, b) with b minimized, the sentiment vertex (most s, least b) dominates every other point
    assert list(zip(front_lines[2].x, front_lines[2].y)) == [(-33.0, 0.6)]
    assert sorted(front_lines[0].y) == [0.4, 0.5, 0.7]  # on (r, s): the s vertex, the base, the r vertex


def test_parallel_coordinates_show_every_objective_better_up_and_colour_by_weight():
    from modpo.plots import parallel_figure
    fig = parallel_figure(three_objectives(), ["r", "s", "b"], {"r": True, "s": True, "b": False}, color_by="s")
    par = fig.data[0]
    assert [d.label for d in par.dimensions] == ["r", "s", "b (lower better)"]
    assert list(par.dimensions[2].range) == [-12.0, -33.0]  # minimized: the lowest value on top
    assert list(par.line.color) == [-0.1, 0.0, 1.0, 0.0]  # the base model has no weight: its own colour


def test_the_simplex_picker_puts_each_weighting_at_its_barycentre_and_the_click_index_in_customdata():
    from modpo.plots import SIMPLEX_CORNERS, simplex_picker_figure, simplex_xy
    choices = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.5, 0.25, 0.25]]
    fig = simplex_picker_figure(["r<b>", "s", "b"], choices, [0.5, 0.25, 0.25], {"w-1.00-0.00-0.00": [1, 0, 0]})
    dots = fig.data[1]
    assert fig.data.index(dots) == 1 and list(dots.customdata) == [0, 1, 2, 3], "a click maps back by index"
    assert [(x, y) for x, y in zip(dots.x, dots.y)][:3] == list(SIMPLEX_CORNERS)
    x, y = simplex_xy([0.5, 0.25, 0.25])
    assert np.isclose(x, 0.5 * 0 + 0.25 * 1 + 0.25 * 0.5) and np.isclose(y, 0.25 * SIMPLEX_CORNERS[2][1])
    star = traces_by_name(fig)["chosen"]
    assert (star.x[0], star.y[0]) == (x, y)
    assert list(traces_by_name(fig)["trained adapters"].hovertext) == ["w-1.00-0.00-0.00"]
    assert [a.text for a in fig.layout.annotations][0] == "<b>r&lt;b&gt;</b>", "a name from a family shows as text"
