"""Plotly figures of a family's front, as pure functions of the front table (front.py).

Used by the dashboard and by the demo build (the README's PNG), so both draw the same picture.
Every marker carries its point id in customdata, so a selection maps back to adapters.
Plotly renders a subset of HTML (links, bold) in text, hovers and titles: every string from a
family (ids, objective and family names) goes through `literal`, so it shows as itself.
"""
from __future__ import annotations

import html
import os
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go

from .pareto import front_order

KIND_STYLE = {  # kind -> (legend name, marker symbol, colour)
    "modpo": ("MODPO adapter", "circle", "#1f77b4"),
    "dpo-margin": ("margin model (DPO)", "diamond", "#9467bd"),
    "base": ("base model", "star", "#2b2b2b"),
    "merge": ("merged (preview)", "square", "#ff7f0e"),
    "mix": ("decoding-time mix (preview)", "triangle-up", "#2ca02c"),
    "conditioned": ("conditioned adapter (one for every w)", "x", "#17becf"),
}


def literal(text) -> str:
    """text as plotly shows it literally: its HTML subset escaped."""
    return html.escape(str(text), quote=False)


def hover_text(row: pd.Series, objectives: list[str]) -> str:
    lines = [f"<b>{literal(row['id'])}</b> ({literal(row['kind'])})"]
    weights = [f"{literal(o)}={row[f'w_{o}']:.2f}" for o in objectives if pd.notna(row.get(f"w_{o}"))]
    if weights:
        lines.append("weights: " + ", ".join(weights))
    for o in objectives:
        if pd.notna(row.get(o)):
            lines.append(f"{literal(o)}: {row[o]:.4g} ± {row[f'{o}_stderr']:.2g}")
    if pd.notna(row.get("kl")):
        lines.append(f"KL est.: {row['kl']:.3g}")
    if pd.notna(row.get("steps")):
        lines.append(f"steps: {int(row['steps'])}")
    return "<br>".join(lines)


# The legend's word for a point dominated on the two plotted objectives: with 3+ objectives such a point can
# still be on the front of all of them (front.front_table's on_front), which the Front page counts.
DOMINATED_HERE = " (dominated on these axes)"


def front_figure(table: pd.DataFrame, objectives: list[str], maximize: dict[str, bool], x: str, y: str,
                 selected: list[str] | tuple = (), new_ids: list[str] | tuple = (), title: str | None = None,
                 label_all: bool = False, meanings: dict[str, str] | None = None,
                 reference: tuple[float, float] | None = None) -> go.Figure:
    """Scatter of objective x against y: front points joined in order, dominated faded, each kind
    with its own marker, error bars from the standard errors, selected points ringed.

    Points other than trained adapters carry their id as text; label_all labels every point (for a
    static PNG, where there is no hover) but the conditioned adapter's many grid points (hover only).

    The front is recomputed on the two plotted objectives, so it is the front of what is shown.
    meanings: objective -> what its number is (scorers.meaning), shown in the axis titles.
    reference: the hypervolume's reference point (x, y), drawn as a cross. A selected point is drawn
    opaque even when dominated, so the selection is always visible.
    """
    from .pareto import pareto_mask

    data = table[table["evaluated"].astype(bool)].copy()
    fig = go.Figure()
    if data.empty:
        fig.update_layout(title=literal(title) if title else "no evaluated points yet")
        return fig
    mask = pareto_mask(data[[x, y]].to_numpy(float), [maximize[x], maximize[y]])
    data["front2d"] = mask
    order = front_order(data[[x, y]].to_numpy(float), mask, axis=0)
    fig.add_trace(go.Scatter(x=data[x].to_numpy()[order], y=data[y].to_numpy()[order], mode="lines",
                             line=dict(color="#1f77b4", width=1.5, dash="dot"), name="Pareto front",
                             hoverinfo="skip"))
    for kind, (label, symbol, colour) in KIND_STYLE.items():
        for on_front in (True, False):
            part = data[(data["kind"] == kind) & (data["front2d"] == on_front)]
            if part.empty:
                continue
            # the conditioned adapter's grid points are many and close together: their ids show on hover only
            labelled = kind != "conditioned" and (kind != "modpo" or label_all)
            fig.add_trace(go.Scatter(
                x=part[x], y=part[y], mode="markers+text" if labelled else "markers",
                name=label + ("" if on_front else DOMINATED_HERE), customdata=part["id"].to_numpy(),
                text=[literal(i) if labelled else "" for i in part["id"]],
                textposition="top right" if kind == "modpo" else "top center", textfont=dict(size=11),
                error_x=dict(type="data", array=part[f"{x}_stderr"].fillna(0), thickness=1, width=0, color=colour),
                error_y=dict(type="data", array=part[f"{y}_stderr"].fillna(0), thickness=1, width=0, color=colour),
                marker=dict(symbol=symbol, size=12 if on_front else 9, color=colour,
                            opacity=[1.0 if on_front or i in selected else 0.35 for i in part["id"]],
                            line=dict(width=[3 if i in selected else (2 if i in new_ids else 0) for i in part["id"]],
                                      color=["#d62728" if i in selected else "#17becf" for i in part["id"]])),
                hovertext=[hover_text(r, objectives) for _, r in part.iterrows()], hoverinfo="text"))
    add_links_to_trained(fig, data, objectives, x, y)
    curve = data[data["kind"] == "conditioned"]
    if len(objectives) == 2 and len(curve) > 1:  # its grid is one line of weightings: drawn as its own curve
        curve = curve.sort_values(f"w_{objectives[0]}")
        fig.add_trace(go.Scatter(x=curve[x], y=curve[y], mode="lines", name="conditioned adapter's curve",
                                 line=dict(color=KIND_STYLE["conditioned"][2], width=1.5), hoverinfo="skip"))
    if reference is not None:
        fig.add_trace(go.Scatter(x=[reference[0]], y=[reference[1]], mode="markers", name="hypervolume reference",
                                 marker=dict(symbol="x-thin", size=14, line=dict(width=2, color="#7f7f7f")),
                                 hoverinfo="name"))
    arrow = {True: "→ better", False: "← better"}
    meanings = meanings or {}

    def axis(name: str, better: str) -> str:
        note = f": {literal(meanings[name])}" if meanings.get(name) else ""
        return f"{literal(name)}{note} ({better})"
    fig.update_layout(title=literal(title) if title else None, xaxis_title=axis(x, arrow[maximize[x]]),
                      yaxis_title=axis(y, f"{'↑' if maximize[y] else '↓'} better"),
                      # no dragmode="select": Streamlit then forces clickmode "event" and a click on a
                      # scatter marker never selects; box and lasso stay in the chart's toolbar
                      legend=dict(orientation="h", y=-0.2), margin=dict(l=60, r=20, t=50, b=80),
                      template="plotly_white")
    return fig


def pairwise_figure(table: pd.DataFrame, objectives: list[str], maximize: dict[str, bool], title: str | None = None,
                    meanings: dict[str, str] | None = None) -> go.Figure:
    """Every pair of objectives side by side (front_figure's panels, every point labelled): the
    projections of a front of 3+ objectives. Each panel's front is that pair's."""
    from itertools import combinations

    from plotly.subplots import make_subplots

    pairs = list(combinations(objectives, 2))
    fig = make_subplots(rows=1, cols=len(pairs), horizontal_spacing=0.08)
    seen = set()
    for col, (y, x) in enumerate(pairs, start=1):
        panel = front_figure(table, objectives, maximize, x, y, label_all=True, meanings=meanings)
        for trace in panel.data:
            trace.showlegend = trace.name not in seen
            seen.add(trace.name)
            trace.legendgroup = trace.name
            fig.add_trace(trace, row=1, col=col)
        fig.update_xaxes(title_text=panel.layout.xaxis.title.text, row=1, col=col)
        fig.update_yaxes(title_text=panel.layout.yaxis.title.text, row=1, col=col)
    fig.update_layout(title=literal(title) if title else None, template="plotly_white",
                      legend=dict(orientation="h", y=-0.25), margin=dict(l=60, r=20, t=50, b=90))
    return fig


def parallel_figure(table: pd.DataFrame, objectives: list[str], maximize: dict[str, bool],
                    color_by: str | None = None, title: str | None = None) -> go.Figure:
    """Parallel coordinates of the evaluated points, one axis per objective (better up), each line
    coloured by its weight on color_by (the first objective by default); the base model is black."""
    data = table[table["evaluated"].astype(bool)]
    color_by = color_by or objectives[0]
    weight = data[f"w_{color_by}"].astype(float).fillna(-0.1).to_numpy()
    dims = [dict(label=literal(o) + ("" if maximize[o] else " (lower better)"), values=data[o].astype(float),
                 range=[float(data[o].min()), float(data[o].max())] if maximize[o]
                 else [float(data[o].max()), float(data[o].min())]) for o in objectives]
    scale = [[0.0, "#2b2b2b"], [0.09, "#2b2b2b"], [0.0901, "#440154"], [0.5, "#21918c"], [1.0, "#fde725"]]
    fig = go.Figure(go.Parcoords(dimensions=dims, line=dict(color=weight, cmin=-0.1, cmax=1.0, colorscale=scale,
                                                             showscale=True,
                                                             colorbar=dict(title=f"w {literal(color_by)}"))))
    fig.update_layout(title=literal(title) if title else None, template="plotly_white",
                      margin=dict(l=60, r=40, t=70, b=30))
    return fig


def nearest_trained(table: pd.DataFrame, objectives: list[str], row: pd.Series) -> pd.Series | None:
    """The trained MODPO point whose weighting is nearest (L1) to row's."""
    trained = table[(table["kind"] == "modpo") & table[[f"w_{o}" for o in objectives]].notna().all(axis=1)]
    if trained.empty or any(pd.isna(row.get(f"w_{o}")) for o in objectives):
        return None
    dist = sum((trained[f"w_{o}"] - row[f"w_{o}"]).abs() for o in objectives)
    return trained.loc[dist.idxmin()]


def add_links_to_trained(fig: go.Figure, data: pd.DataFrame, objectives: list[str], x: str, y: str) -> None:
    """A dotted line from each merged / mixed point to the trained point at the nearest weighting."""
    xs, ys = [], []
    for _, row in data[data["kind"].isin(["merge", "mix"])].iterrows():
        near = nearest_trained(data, objectives, row)
        if near is not None:
            xs += [row[x], near[x], None]
            ys += [row[y], near[y], None]
    if xs:
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=dict(color="#7f7f7f", width=1, dash="dot"),
                                 name="preview → nearest trained", hoverinfo="skip"))


def png_bytes(fig: go.Figure, width: int = 900, height: int = 600) -> bytes:
    """The figure as PNG via kaleido, which drives a Chromium (Debian's, if BROWSER_PATH is unset)."""
    if "BROWSER_PATH" not in os.environ and Path("/usr/bin/chromium").exists():
        os.environ["BROWSER_PATH"] = "/usr/bin/chromium"
    return fig.to_image(format="png", width=width, height=height, scale=1)


def save_png(fig: go.Figure, path: str | Path, width: int = 900, height: int = 600) -> None:
    from .family import atomic_write_bytes
    atomic_write_bytes(Path(path), png_bytes(fig, width, height))


def weights_figure(objectives: list[str], grid, probs, credible, estimate, points: dict[str, list[float]],
                   nearest_id: str | None = None) -> go.Figure:
    """Where the user's weighting lies, from their votes (choose.Posterior): the credible region of the
    posterior (coloured by probability), the estimate (posterior mean) and the family's points at their
    weightings. A triangle for three objectives, the first weight's axis for two, bars for more.
    grid: (G, K); probs: (G,); credible: (G,) bool; estimate: (K,); points: id -> K weights."""
    import numpy as np

    grid, probs, credible = np.asarray(grid), np.asarray(probs), np.asarray(credible, bool)
    names = [literal(o) for o in objectives]
    ids = list(points)
    near = [i == nearest_id for i in ids]
    point_style = dict(size=[13 if n else 9 for n in near], color="#1f77b4", symbol="circle",
                       line=dict(width=[3 if n else 1 for n in near], color="#d62728"))
    fig = go.Figure()
    if len(objectives) == 3:
        fig.add_trace(go.Scatterternary(
            a=grid[credible, 0], b=grid[credible, 1], c=grid[credible, 2], mode="markers", hoverinfo="skip",
            marker=dict(size=7, symbol="hexagon", color=probs[credible], colorscale="Blues", showscale=False),
            name="90% credible region"))
        fig.add_trace(go.Scatterternary(
            a=[points[i][0] for i in ids], b=[points[i][1] for i in ids], c=[points[i][2] for i in ids],
            mode="markers", marker=point_style, name="points", customdata=ids,
            hovertext=[literal(i) for i in ids], hoverinfo="text"))
        fig.add_trace(go.Scatterternary(a=[estimate[0]], b=[estimate[1]], c=[estimate[2]], mode="markers",
                                        marker=dict(size=18, symbol="star", color="#d62728"), name="your weighting"))
        fig.update_layout(ternary=dict(aaxis_title=names[0], baxis_title=names[1], caxis_title=names[2]))
    elif len(objectives) == 2:
        order = np.argsort(grid[:, 0])
        fig.add_trace(go.Scatter(x=grid[order, 0], y=probs[order], mode="lines", name="posterior",
                                 line=dict(color="#1f77b4")))
        fig.add_trace(go.Scatter(x=grid[credible, 0], y=probs[credible], mode="markers", name="90% credible region",
                                 marker=dict(size=5, color="#9ecae1")))
        fig.add_trace(go.Scatter(x=[points[i][0] for i in ids], y=[0] * len(ids), mode="markers", name="points",
                                 marker=point_style, customdata=ids, hovertext=[literal(i) for i in ids],
                                 hoverinfo="text"))
        fig.add_vline(x=float(estimate[0]), line_color="#d62728", annotation_text="your weighting")
        fig.update_layout(xaxis_title=f"weight on {names[0]} (the rest on {names[1]})",
                          yaxis_title="posterior probability")
    else:
        sd = np.sqrt(probs @ (grid - np.asarray(estimate)) ** 2)
        fig.add_trace(go.Bar(x=names, y=list(estimate), error_y=dict(array=list(sd)), name="your weighting"))
        fig.update_layout(yaxis_title="weight (posterior mean ± sd)")
    fig.update_layout(template="plotly_white", height=420, margin=dict(l=40, r=40, t=40, b=40),
                      legend=dict(orientation="h"))
    return fig


SIMPLEX_CORNERS = ((0.0, 0.0), (1.0, 0.0), (0.5, 0.8660254037844386))  # where w = e_0, e_1, e_2 sit


def simplex_xy(weights) -> tuple[float, float]:
    """Three weights (summing to 1) -> their place in the triangle of SIMPLEX_CORNERS (barycentric)."""
    return (sum(w * c[0] for w, c in zip(weights, SIMPLEX_CORNERS)),
            sum(w * c[1] for w, c in zip(weights, SIMPLEX_CORNERS)))


def simplex_picker_figure(objectives: list[str], choices: list[list[float]], chosen: list[float] | None,
                          trained: dict[str, list[float]]) -> go.Figure:
    """A triangle to pick a weighting of three objectives by clicking: every weighting in choices is a
    clickable dot carrying its index in customdata (the dashboard maps a click back to choices), the
    chosen one a star, the family's trained weightings rings (hover shows their ids). Plain x-y scatter
    traces, so a click is a streamlit selection like any point on the front."""
    names = [literal(o) for o in objectives]
    fig = go.Figure()
    corners = [*SIMPLEX_CORNERS, SIMPLEX_CORNERS[0]]
    fig.add_trace(go.Scatter(x=[c[0] for c in corners], y=[c[1] for c in corners], mode="lines", hoverinfo="skip",
                             line=dict(color="#999", width=1), showlegend=False))
    xy = [simplex_xy(w) for w in choices]
    hover = [", ".join(f"{n} {v:.2f}" for n, v in zip(names, w)) for w in choices]
    fig.add_trace(go.Scatter(x=[p[0] for p in xy], y=[p[1] for p in xy], mode="markers", name="weightings",
                             customdata=list(range(len(choices))), hovertext=hover, hoverinfo="text",
                             marker=dict(size=9, color="#c6dbef", line=dict(width=0))))
    if trained:
        ids = list(trained)
        at = [simplex_xy(trained[i]) for i in ids]
        fig.add_trace(go.Scatter(x=[p[0] for p in at], y=[p[1] for p in at], mode="markers", name="trained adapters",
                                 hovertext=[literal(i) for i in ids], hoverinfo="text",
                                 marker=dict(size=13, color="rgba(0,0,0,0)", line=dict(width=2, color="#1f77b4"))))
    if chosen is not None:
        x, y = simplex_xy(chosen)
        fig.add_trace(go.Scatter(x=[x], y=[y], mode="markers", name="chosen", hoverinfo="skip",
                                 marker=dict(size=18, symbol="star", color="#d62728")))
    for (x, y), name, pos in zip(SIMPLEX_CORNERS, names, ("bottom left", "bottom right", "top center")):
        fig.add_annotation(x=x, y=y, text=f"<b>{name}</b>", showarrow=False, yshift=-14 if "bottom" in pos else 14)
    # no zoom or pan (fixed ranges); dragmode left unset, so a click selects (streamlit ignores clicks on
    # points while dragmode is select or lasso)
    fig.update_xaxes(visible=False, range=[-0.12, 1.12], fixedrange=True)
    fig.update_yaxes(visible=False, range=[-0.12, 0.98], scaleanchor="x", fixedrange=True)
    fig.update_layout(template="plotly_white", height=360, margin=dict(l=10, r=10, t=10, b=10),
                      legend=dict(orientation="h"))
    return fig
