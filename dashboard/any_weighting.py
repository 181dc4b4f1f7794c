"""Any weighting: the conditioned adapter (modpo/conditioned.py) answers at a weighting the user picks.

A slider (two objectives), a triangle to click (three) or one slider per objective scaled to sum to 1
(more) picks w; while the panel is open a toggle shows a column at that w on the Compare page, and "Pin"
keeps it as a column while w moves on (and after the panel closes).
Each weighting is exported exactly as a plain LoRA (conditioned.exported_folder, milliseconds) into this
user's private cache, keyed by the adapter's file and w, so it answers in the same batched generate call
as every other column, at the cost of one adapter.
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboard import common
from modpo import family as fam

ANY = "-any-"
OPEN_KEY = "any_open"  # the expander's open state (session state)


def any_id(cid: str, weights: list[float]) -> str:
    """'conditioned-any-0.50-0.50': a column's id (a valid point id and peft name; never saved as a folder)."""
    return cid + ANY + "-".join(f"{w:.2f}" for w in weights)


def point_at(root: Path, cid: str, weights: list[float]) -> fam.Point:
    """A column for the conditioned adapter at weights (not saved in the family)."""
    from modpo.conditioned import exported_folder
    names = fam.read_family(root).objective_names
    pid = any_id(cid, weights)
    return fam.Point(pid, "conditioned", dict(zip(names, weights)), {"kind": "conditioned", "conditioned": cid},
                     None, exported_folder(root, cid, weights))


TRIANGLE_STEP, TRIANGLE_KEY = 0.05, "any_triangle"


def pick_on_triangle(family, eps: float) -> list[float]:
    """Three objectives: click a weighting in a triangle (plots.simplex_picker_figure), every multiple of
    TRIANGLE_STEP the conditioned adapter was trained for (w_target >= eps); the trained weightings show
    as rings. Starts at the centre; a click moves the star."""
    from modpo.front import EXACT_KINDS
    from modpo.pareto import weight_grid
    from modpo.plots import simplex_picker_figure
    spec = family.spec
    t = spec.target_index
    choices = [list(w) for w in weight_grid(3, TRIANGLE_STEP, interior=False) if w[t] >= eps - 1e-9]
    centre = min(choices, key=lambda w: sum((x - 1 / 3) ** 2 for x in w))
    chosen = st.session_state.get("any_w3")
    if chosen not in choices:
        chosen = centre
    event = st.session_state.get("_inject_" + TRIANGLE_KEY)  # tests inject chart events here
    trained = {p.id: [p.weights[n] for n in spec.objective_names] for p in family.points
               if p.kind in EXACT_KINDS and p.weights}
    fig = simplex_picker_figure(spec.objective_names, choices, chosen, trained)
    shown = st.plotly_chart(fig, key=TRIANGLE_KEY, on_select="rerun", selection_mode="points",
                            config={"displaylogo": False, "displayModeBar": False})
    for point in common.chart_points(event or shown):
        index = point.get("customdata")
        if isinstance(index, int) and not isinstance(index, bool) and 0 <= index < len(choices) \
                and point.get("curve_number", 1) == 1:
            chosen = choices[index]
    if st.session_state.get("any_w3") != chosen:
        st.session_state["any_w3"] = chosen
        if event is None:  # a click: draw the star where it landed
            st.rerun()
    st.caption(common.literal("click a weighting: " + ", ".join(f"{n} {w:.2f}"
                                                                for n, w in zip(spec.objective_names, chosen))),
               help=common.literal((f"Dots: every multiple of {TRIANGLE_STEP:g} with at least {eps:g} on the target "
                                    f"({spec.target}), the part of the simplex the adapter was trained on (MODPO "
                                    "divides by the target's weight). " if eps > 0 else
                                    f"Dots: every multiple of {TRIANGLE_STEP:g}; the adapter was trained on the whole "
                                    "simplex, each weighting on the labels of its largest objective. ")
                                   + "Rings: the trained adapters, those with no weight on the target included; "
                                   "compare them on the Front page."))
    return chosen


def pick_weighting(spec, eps: float, family=None) -> list[float] | None:
    """The weighting chosen with a slider (two objectives), a triangle (three) or linked sliders (more), in
    family order summing to 1, or None with a message."""
    from modpo.weights import normalize
    names = spec.objective_names
    if len(names) == 3 and family is not None:
        return pick_on_triangle(family, eps)
    if len(names) == 2:
        first = st.slider(f"weight on {common.literal(names[0])} (the rest on {common.literal(names[1])})",
                          0.0, 1.0, 0.5, 0.05, key="any_w_0")
        weights = normalize([first, 1 - first])
    else:
        cols = st.columns(len(names))
        raw = [c.slider(common.literal(n), 0.0, 1.0, 1 / len(names), 0.05, key=f"any_w_{i}")
               for i, (c, n) in enumerate(zip(cols, names))]
        try:
            weights = normalize(raw)
        except ValueError as e:
            st.info(common.literal(e))
            return None
        st.caption(common.literal("scaled to sum to 1: " + ", ".join(f"{n} {w:.2f}" for n, w in zip(names, weights))))
    if weights[spec.target_index] < eps - 1e-9:
        st.info(common.literal(f"The conditioned adapter was trained with at least {eps:g} on the target "
                               f"({spec.target}); give it at least that much."))
        return None
    return weights


def render(root: Path, family) -> list:
    """The Any-weighting controls; returns the extra columns (the live weighting when shown, and the pins)."""
    ids = fam.list_conditioned(root)
    if not ids:
        return []
    pins = st.session_state.setdefault("any_pins", {}).setdefault(root.name, [])
    # keyed, its state kept by the server: it stays open while the controls above it change the page's layout
    panel = st.expander("Any weighting: one conditioned adapter answers at the weighting you pick", key=OPEN_KEY,
                        on_change="rerun")
    with panel:
        cid = st.selectbox("Conditioned adapter", ids, key="any_cid") if len(ids) > 1 else ids[0]
        try:
            _, meta = fam.read_conditioned(root, cid)
        except fam.FamilyError as e:
            st.error(common.literal(f"The conditioned adapter cannot be used: {e}"))
            return []
        weights = pick_weighting(family.spec, meta["conditioning"]["eps"], family)
        c1, c2 = st.columns(2)
        live = c1.toggle("Show a column at this weighting", key="any_show", value=True,
                         help="while this panel is open; pinned weightings stay as columns when it is closed")
        if weights and c2.button("Pin this weighting", key="any_pin") and weights not in [p[1] for p in pins]:
            pins.append((cid, weights))
        if pins and st.button("Unpin all", key="any_unpin"):
            pins.clear()
    live = live and bool(panel.open)  # a closed panel adds no column the user did not ask for
    wanted = ([(cid, weights)] if live and weights else []) + [p for p in pins if p != (cid, weights) or not live]
    try:
        return [point_at(root, c, w) for c, w in wanted if c in ids]
    except (fam.FamilyError, OSError) as e:
        st.error(common.literal(f"Cannot export that weighting: {e}"))
        return []
