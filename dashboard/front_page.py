"""Front page: the trade-off between objectives, the front, hypervolume, and the shared selection.

No model is loaded here: everything comes from the family's JSON files.
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import common, vote_panel
from modpo import family as fam
from modpo.front import table_hypervolume
from modpo.pareto import pareto_mask
from modpo.plots import front_figure, parallel_figure, png_bytes
from modpo.scorers import meaning
from modpo.weights import normalize

CHART_KEY = "front_chart"
TABLE_KEY = "front_table"


def new_point_ids(root) -> list[str]:
    """Adapters made by jobs launched from the dashboard: marked as new on the front."""
    return [j["adapter"] for j in fam.list_jobs(root) if j.get("state") == "done" and j.get("params")]


PREVIEW_KINDS = ("merge", "mix", "conditioned")


def filter_table(table: pd.DataFrame, bounds: dict[str, tuple[float, float]], front_only: bool,
                 maximize: dict[str, bool] | None = None, previews: bool = True) -> pd.DataFrame:
    """The evaluated rows shown: without previews (merges, mixes) when asked, with on_front recomputed on
    what remains, then within the bounds, then the front only. Counts, chart, table and hypervolume all
    use this one table."""
    keep = table["evaluated"].astype(bool)
    if not previews:
        keep &= ~table["kind"].isin(PREVIEW_KINDS)
    shown = table[keep].copy()
    if maximize and not shown.empty:
        names = list(maximize)
        shown["on_front"] = pareto_mask(shown[names].to_numpy(float), [maximize[o] for o in names])
    for name, (lo, hi) in bounds.items():
        shown = shown[shown[name].between(lo, hi)]
    if front_only:
        shown = shown[shown["on_front"].astype(bool)]
    return shown


def display_table(table: pd.DataFrame, objectives: list[str], selected: list[str]) -> pd.DataFrame:
    """The table beside the chart: weights in one column with their order in the header, "-" where a
    point has no value (the base model has no weights or steps)."""
    cols = {"id": table["id"], "kind": table["kind"]}
    cols[f"w ({', '.join(objectives)})"] = [
        ", ".join(f"{row[f'w_{o}']:.2f}" for o in objectives) if pd.notna(row[f"w_{objectives[0]}"]) else "-"
        for _, row in table.iterrows()]
    for o in objectives:
        cols[o] = table[o]
        cols[f"± {o}"] = table[f"{o}_stderr"]
    cols["KL"] = table["kl"]
    cols["steps"] = [str(int(v)) if pd.notna(v) else "-" for v in table["steps"]]
    cols["on front"] = table["on_front"]
    cols["selected"] = table["id"].isin(selected)
    return pd.DataFrame(cols).reset_index(drop=True)


def table_columns(shown: pd.DataFrame, objectives: list[str]) -> dict:
    """Compact column formats, so every column shows at 1440 px: 4 significant digits for scores."""
    config = {o: st.column_config.NumberColumn(o, format="%.4g") for o in objectives}
    order = ", ".join(objectives)  # the header says "w" and its help the order: the long header made it scroll
    config[f"w ({order})"] = st.column_config.TextColumn("w", help=f"the weighting: weights on {order}, in order")
    config.update({f"± {o}": st.column_config.NumberColumn("±", format="%.2g", help=f"standard error of {o}")
                   for o in objectives})  # "±" under each score's header: the names made the table scroll
    config["KL"] = st.column_config.NumberColumn("KL", format="%.2g", help="mean log-ratio to the base model "
                                                 "on the point's own answers: with greedy answers the log-ratio at "
                                                 "the mode, not an unbiased KL, and it can be negative")
    config["on front"] = st.column_config.CheckboxColumn("front", help="non-dominated on every objective")
    config["selected"] = st.column_config.CheckboxColumn("sel.", help="in the selection the Compare page shows")
    return config


def render_filters(table: pd.DataFrame, family) -> tuple[dict, bool, bool]:
    bounds = {}
    with st.sidebar.expander("Filters", expanded=False):
        front_only = st.toggle("Front only", key="front_only")
        previews = st.toggle("Include previews (merges, mixes, conditioned)", value=True, key="include_previews",
                             help="off: previews leave the chart, the front, the counts and the hypervolume")
        for o in family.spec.objectives:
            values = table.loc[table["evaluated"].astype(bool), o.name].to_numpy(float)
            if len(values) == 0:
                continue
            lo, hi = float(values.min()), float(values.max())
            if hi > lo:
                bounds[o.name] = st.slider(f"{common.literal(o.name)} range", lo, hi, (lo, hi), key=f"filter_{o.name}")
    return bounds, front_only, previews


DEFAULTS_SEEN = "_ref_defaults"  # session state: the default reference each box was last given


def follow_defaults(defaults: dict[str, float]) -> None:
    """Give each reference box its default, unless the user has typed another value since: a box still at
    the default it was given follows the default as the filters or the axes change it."""
    seen = st.session_state.setdefault(DEFAULTS_SEEN, {})
    for key, value in defaults.items():
        if key not in st.session_state or st.session_state[key] == seen.get(key):
            st.session_state[key] = value
        seen[key] = value


def reset_reference(defaults: dict[str, float]) -> None:
    """The Reset button's callback: it runs before the page, so the boxes show the defaults they hold."""
    st.session_state.update(defaults)
    st.session_state.setdefault(DEFAULTS_SEEN, {}).update(defaults)


def render_hypervolume(family, table: pd.DataFrame, objectives: list[str]) -> list[float] | None:
    """Hypervolume of the shown points over the plotted objectives; returns the reference point used."""
    if table.empty:
        return None
    _, default_ref = table_hypervolume(family, table, objectives=objectives)
    cols = st.columns(len(objectives) + 2)
    defaults = {f"ref_{o}": float(np.round(r, 4)) for o, r in zip(objectives, default_ref)}
    follow_defaults(defaults)
    cols[-1].button("Reset reference", key="reset_reference", on_click=reset_reference, args=(defaults,),
                    help="back to the default: the worst shown value of each objective, padded by 10% of its range")
    ref = [c.number_input(f"reference {common.literal(o)}", format="%.4f", key=k)
           for c, o, k in zip(cols, objectives, defaults)]
    try:
        hv, _ = table_hypervolume(family, table, reference_point=ref, objectives=objectives)
    except ValueError as e:
        cols[-2].error(common.literal(e))
        return ref
    cols[-2].metric("Hypervolume", f"{hv:.4g}", help="Volume of objective space dominated by the shown points "
                    "and bounded by the reference point (moocore); the filters apply")
    if hv == 0:
        st.warning("The reference point is not dominated by any shown point, so the hypervolume is 0: move it "
                   "past the worst values, or press Reset reference.")
    return ref


# Streamlit's chart events do not say whether Shift was held, so a press on the chart sets the "Clicks add"
# toggle to match: a Shift-press turns it on (if it was off), the next press without Shift turns it back
# off. The toggle changes before plotly's selection event, so the rerun that applies the selection reads
# both. A fixed script in a zero-height same-origin component frame, listening on the app's document; it
# reads nothing from the family and acts only on that toggle.
SHIFT_JS = """<script>
const doc = window.parent.document;
let flipped = false;
const press = e => {
  if (!e.target.closest || !e.target.closest('.st-key-%s')) return;
  const box = doc.querySelector('.st-key-click_adds input[type="checkbox"]');
  if (!box) return;
  if (e.shiftKey && !box.checked) { flipped = true; box.click(); }
  else if (!e.shiftKey && flipped) { flipped = false; if (box.checked) box.click(); }
};
doc.addEventListener('mousedown', press, true);
window.addEventListener('pagehide', () => doc.removeEventListener('mousedown', press, true));
</script>""" % CHART_KEY


def shift_adds() -> None:
    import streamlit.components.v1 as components
    components.html(SHIFT_JS, height=0)


def render_chart(root, family, table: pd.DataFrame, objectives: list[str], x: str, y: str,
                 reference: list[float] | None = None) -> None:
    name = root.name  # selection is keyed by the family's folder
    state = common.selection_state(name)
    maximize = {o.name: o.maximize for o in family.spec.objectives}
    selected = common.selected_ids(name, [p.id for p in family.points])  # filters hide points, never unselect them
    t1, t2 = st.columns(2)
    label_all = t1.toggle("Label every point", key="label_all")
    adding = t2.toggle("Clicks add to the selection", key="click_adds",
                       help="On: a click or a box adds its points to the selection instead of replacing it. "
                            "A Shift-click (or Shift-drag) adds, and turns this on; the next click without Shift "
                            "turns it back off.")
    shift_adds()
    figure_args = dict(new_ids=new_point_ids(root), title=f"{name} on {family.spec.base_model}: {y} vs {x}",
                       meanings={o.name: meaning(o.scorer) for o in family.spec.objectives}, label_all=label_all,
                       reference=tuple(reference) if reference else None)
    fig = front_figure(table, objectives, maximize, x, y, selected=selected, **figure_args)
    # the chart, then the table under it at full width: beside the chart a table of three objectives
    # (a mean and a standard error each) scrolled sideways at 1440 px
    chart_area, table_area = st.container(), st.container()
    with chart_area:
        event = st.plotly_chart(fig, key=CHART_KEY, on_select="rerun", selection_mode=("points", "box", "lasso"),
                                config={"displaylogo": False,
                                        "toImageButtonOptions": {"format": "png", "filename": f"{name}-front"}})
        event = st.session_state.get("_inject_" + CHART_KEY, event)  # tests inject chart events here
        ids = common.ids_from_chart_event(event)
        if common.apply_event(state, "chart", ids, add=adding):
            st.rerun()
    with table_area:
        # the ticks follow the adapters, not the row positions: read the user's ticks against the rows they
        # were made on, then tick exactly the selected adapters' rows of the table shown now
        ticked = common.table_rows(st.session_state.get(TABLE_KEY))
        ids = common.ids_from_table_event({"selection": {"rows": list(ticked)}}, state.get("table_ids", []))
        common.apply_event(state, "table", ids, fingerprint=ticked)
        shown = display_table(table, objectives, state["selected"])
        want = tuple(i for i, pid in enumerate(shown["id"]) if pid in state["selected"])
        if want != ticked:
            st.session_state[TABLE_KEY] = {"selection": {"rows": list(want), "columns": []}}
            state["seen"]["table"] = want  # set here, not a new choice of the user's
        state["table_ids"] = shown["id"].tolist()
        st.dataframe(shown, key=TABLE_KEY, on_select="rerun", selection_mode="multi-row", hide_index=True,
                     column_config=table_columns(shown, objectives))
        if state["selected"] and st.button("Clear selection", key="clear_selection"):
            state["selected"] = []
            st.rerun()
    st.download_button("Download table (CSV)", table.to_csv(index=False), f"{name}-front.csv", "text/csv")
    rings = st.checkbox("Selection rings in the PNG", key="png_rings")
    png_figure = fig if rings else front_figure(table, objectives, maximize, x, y, **figure_args)
    st.download_button("Download figure (PNG)", lambda: png_bytes(png_figure, 1000, 650), f"{name}-front.png",
                       "image/png", help="rendered by kaleido with the system Chromium")


def render_preview(root, family) -> None:
    """Preview a weighting without training: merge the adapters' weights or mix their distributions,
    evaluated exactly like the trained points (same prompts, scorers, settings)."""
    spec = family.spec
    with st.sidebar.expander("Preview a weighting", expanded=False):
        with st.form("preview"):
            raw = [st.number_input(f"w {common.literal(o.name)}", 0.0, 1.0, round(1 / len(spec.objectives), 2), 0.05,
                                   key=f"preview_w_{o.name}") for o in spec.objectives]
            method = st.radio("Method", ["merge", "mix"], horizontal=True, key="preview_method",
                              help="merge: one adapter from the weighted sum of LoRA deltas (peft cat). "
                                   "mix: decoding-time mixing of the adapters' next-token log-probs.")
            go = st.form_submit_button("Preview")
        previews = [p.id for p in family.points if p.kind in PREVIEW_KINDS]
        if previews:
            doomed = st.selectbox("Delete a preview", previews, key="delete_preview_id")
            if st.button("Delete preview", key="delete_preview"):
                fam.delete_preview(root, doomed)
                st.rerun()
    if not go:
        return
    from modpo.config import EvalSettings
    from modpo.family import read_eval_prompts

    prompts = read_eval_prompts(root)
    if not prompts:
        st.error("This family has no evaluation prompts.")
        return
    try:
        weights = normalize(raw, decimals=6)
    except ValueError as e:
        st.error(common.literal(e))
        return
    settings = EvalSettings.from_recorded(fam.recorded_eval_settings(family))
    try:
        with st.sidebar.status(f"{method} at w = {[round(w, 3) for w in weights]}: evaluating on {len(prompts)} "
                               "prompts (about as long as evaluating a trained point)...", expanded=True) as status:
            service = common.model_service(str(root), spec.base_model)
            bar = status.progress(0.0, text=f"0 / {len(prompts)} prompts answered")

            begun = time.time()

            def advance(done, total):
                left = common.time_left(begun, done, total)
                bar.progress(done / total, text=f"{done} / {total} prompts answered{left}")
            with service.lock:
                from modpo.instant import make_instant_point
                meta, service.model = make_instant_point(root, weights, method, prompts, settings,
                                                         model=service.model, tokenizer=service.tokenizer,
                                                         log=lambda m: status.write(common.literal(m)),
                                                         on_progress=advance)
            status.update(label=f"{meta['id']} added to the front", state="complete")
        st.rerun()
    except (ValueError, KeyError, fam.FamilyError) as e:
        st.error(common.literal(f"Cannot preview this weighting: {e}"))


def render_many_objectives(table: pd.DataFrame, objectives: list[str], maximize: dict[str, bool]) -> None:
    data = table[table["evaluated"].astype(bool)]
    if len(objectives) < 3 or data.empty:
        return
    st.subheader("All objectives")
    color_by = st.selectbox("Colour lines by the weight on", objectives, key="parallel_color")
    st.plotly_chart(parallel_figure(data, objectives, maximize, color_by), key="parallel")


def render_audit(root, family, table: pd.DataFrame) -> None:
    """The conditioned adapter against the exact ones (front.conditioned_audit), when it is evaluated."""
    from modpo.front import conditioned_audit
    audit = conditioned_audit(family, table)
    if audit is None:
        return
    rows, summary = audit
    interval = common.hypervolume_interval(root)
    resampled = "" if interval is None else (
        f"; over resampled held-out prompts {interval['low']:.2f}-{interval['high']:.2f} "
        f"({interval['level']:.0%} of {interval['draws']} bootstrap draws)")
    st.subheader("One adapter for every weighting: how far from the exact family")
    st.caption(f"Hypervolume of the conditioned adapter's {summary['conditioned_points']} points: "
               f"{summary['hypervolume_conditioned']:.4g}; of the {summary['exact_points']} exact adapters: "
               f"{summary['hypervolume_exact']:.4g} (ratio {summary['ratio']:.3f}{resampled}; the same reference "
               f"point {[round(x, 4) for x in summary['reference_point']]}, all points, no filters). Per trained "
               "weighting, the conditioned adapter's score minus the exact adapter's, in standard errors.")
    st.dataframe(rows, hide_index=True, key="audit_table",
                 column_config={c: st.column_config.NumberColumn(format="%+.2f") for c in rows.columns
                                if c.endswith("_se_apart")})


def render() -> None:
    st.title("Pareto front")
    picked = common.pick_family()
    if picked is None:
        return
    root, family, table = picked
    objectives = family.spec.objective_names
    if not table["evaluated"].any():
        st.info("No adapter of this family is evaluated yet: run `python -m modpo evaluate --family ...`.")
        return
    bounds, front_only, previews = render_filters(table, family)
    maximize = {o.name: o.maximize for o in family.spec.objectives}
    shown = filter_table(table, bounds, front_only, maximize, previews)
    x, y = objectives[1], objectives[0]
    if len(objectives) > 2:
        c1, c2 = st.columns(2)
        x = c1.selectbox("x axis", objectives, index=1, key="axis_x")
        y_options = [o for o in objectives if o != x]  # one objective on both axes is no trade-off to draw
        if st.session_state.get("axis_y") not in y_options:
            st.session_state["axis_y"] = y_options[0]
        y = c2.selectbox("y axis", y_options, key="axis_y")
    c = st.columns(3)
    c[0].metric("Points", len(shown), help=f"shown, of {int(table['evaluated'].sum())} evaluated; the filters and "
                "the previews toggle apply to the counts, the chart, the table and the hypervolume")
    c[1].metric("On the front", int(shown["on_front"].sum()),
                help=f"non-dominated on all {len(objectives)} objectives (the table's 'front' column); the chart "
                     "fades the points dominated on its two axes")
    c[2].metric("Selected", len(common.selected_ids(root.name, [p.id for p in family.points])))
    reference = render_hypervolume(family, shown, [x, y])
    render_chart(root, family, shown, objectives, x, y, reference)
    render_many_objectives(shown, objectives, maximize)
    render_audit(root, family, table)
    render_preview(root, family)
    vote_panel.render_front_section(root, family)
    st.caption("Click a point to select it; for several, pick Box Select or Lasso Select in the chart's toolbar "
               "and drag; or tick rows in the table. The Compare page shows what the selected adapters say.")
