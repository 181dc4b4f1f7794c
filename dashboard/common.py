"""What every page shares: the checkpoints root, the family picker, cached family loading, and the
one selection of adapter ids that the chart, the table and the compare page all read and write.

Selection logic is pure functions over plain data (tested without Streamlit); the st.* calls
stay in small render helpers.
"""
from __future__ import annotations

import os
import string
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import streamlit as st

from modpo import family as fam
from modpo.config import with_legacy_defaults
from modpo.front import conditioned_hypervolume_interval, front_table

REPO = Path(__file__).resolve().parent.parent
DEFAULT_FAMILY = "demo"


_MARKDOWN_SPECIAL = set(string.punctuation)


ZERO_WIDTH = "\u200b"


def literal(text) -> str:
    """text shown as itself in any Streamlit element that renders markdown (warnings, captions,
    headers, expander and widget labels): every ASCII punctuation mark is backslash-escaped, so no link,
    HTML, emphasis, LaTeX or colour directive can form; a zero-width space breaks what GitHub markdown
    would turn into a link on its own (://, www., @); newlines become spaces (no headings or lists).
    Every string from a family, a query parameter or a model goes through this or st.text / st.code."""
    text = " ".join(str(text).split("\n"))
    for pattern in ("://", "www.", "WWW.", "@"):
        text = text.replace(pattern, pattern[0] + ZERO_WIDTH + pattern[1:])
    return "".join("\\" + c if c in _MARKDOWN_SPECIAL else c for c in text)


def checkpoints_root() -> Path:
    return Path(os.environ.get("MODPO_CHECKPOINTS", REPO / "checkpoints")).resolve()


@st.cache_resource(max_entries=16, show_spinner=False)
def _load(root: str, signature: tuple):
    family = fam.load_family(Path(root))
    return family, front_table(family)


def load(root: Path):
    """(Family, front table), reloaded only when something on disk changed."""
    return _load(str(root), fam.signature(root))


@st.cache_resource(max_entries=16, show_spinner=False)
def _hypervolume_interval(root: str, signature: tuple):
    return conditioned_hypervolume_interval(*_load(root, signature))


def hypervolume_interval(root: Path) -> dict | None:
    """front.conditioned_hypervolume_interval of the family at root (300 bootstrap draws), recomputed only
    when something on disk changed."""
    return _hypervolume_interval(str(root), fam.signature(root))


def pick_family() -> tuple[Path, object, object] | None:
    """Sidebar family picker; returns (root, family, table) or None after showing why there is none."""
    base = checkpoints_root()
    names = fam.list_families(base)
    if not names:
        st.info(f"No families under {base}. Build the demo with `python -m modpo demo`, or train one with "
                "`python -m modpo sweep` (see the README).")
        return None
    wanted = st.query_params.get("family") or st.session_state.get("family") or DEFAULT_FAMILY
    index = names.index(wanted) if wanted in names else 0
    if wanted not in names and wanted != DEFAULT_FAMILY:  # a typed URL: never a path, only a listed name
        st.warning(literal(f"{wanted[:200]!r} is not one of the families in the checkpoints folder; refused. "
                           f"Showing {names[index]!r}."))
    name = st.sidebar.selectbox("Family", names, index=index, key="family_picker")
    try:
        root = fam.inside_root(base, name)
    except fam.FamilyError as e:
        st.error(literal(e))
        return None
    st.session_state["family"] = name
    st.query_params["family"] = name
    try:
        family, table = load(root)
    except fam.FamilyError as e:
        st.error(literal(f"Family {name!r} cannot be loaded: {e}"))
        return None
    for problem in family.errors:
        st.warning(literal(f"Not shown, or shown unevaluated: {problem}"))
    return root, family, table


def time_left(started: float | None, done: int, total: int, now: float | None = None) -> str:
    """", about 2 min left" from the pace so far (empty until there is a pace to go by)."""
    if not started or not done or done >= total:
        return ""
    seconds = ((now or time.time()) - started) / done * (total - done)
    return f", about {seconds / 60:.0f} min left" if seconds >= 90 else f", about {seconds:.0f} s left"


# ---- the model service: one base model per family in memory, shared by every session --------------

@dataclass
class ModelService:
    """One base model per family, shared by every session; generation is serialised by the lock."""
    model: object
    tokenizer: object
    lock: threading.Lock = field(default_factory=threading.Lock)
    responses: dict = field(default_factory=dict)  # (point id, prompt, settings) -> {"text", "scores"}

    def answer(self, family, points: list, prompt: str, settings, streamer=None) -> int:
        """Cache the answers of the points not yet answered for (prompt, settings); returns how many.
        streamer: a modpo.generate.RowStreamer that sees the tokens as they come (another thread shows them)."""
        from modpo.evaluate import adapters_of, answer_points, policy_of
        from modpo.models import attach_adapters

        with self.lock:
            todo = [p for p in points if (p.id, prompt, settings) not in self.responses]
            if not todo:
                return 0
            self.model = attach_adapters(self.model, adapters_of(family, todo))
            answers = answer_points(self.model, self.tokenizer, family.spec, [prompt],
                                    {p.id: policy_of(p) for p in todo}, settings, streamer=streamer)
            for p in todo:
                a = answers[p.id]
                self.responses[(p.id, prompt, settings)] = {
                    "text": a["texts"][0], "capped": a["capped"][0],
                    "scores": {k: float(v[0]) for k, v in a["scores"].items()}}
            return len(todo)


@st.cache_resource(show_spinner="Loading the base model...", max_entries=2)
def model_service(root: str, base_model: str) -> ModelService:
    from modpo.models import load_base
    model, tokenizer = load_base(base_model)
    return ModelService(model, tokenizer)


# ---- selection: one list of adapter ids per family --------------------------------------------------

SAVED = "saved at evaluation"  # an answer's source when it comes from the point's eval.json


def answer_settings(point, response: dict, settings) -> dict:
    """How an answer was made, for the records that name it (votes, downloads): the page's settings, or for an
    answer saved at evaluation the evaluation's recorded ones (the same decoding; its batch size may differ)."""
    made = asdict(settings)
    if response.get("source") == SAVED and point.eval:
        recorded = with_legacy_defaults(point.eval.get("settings"))
        made.update({k: recorded[k] for k in made if k in recorded})
    return made


def chart_points(event) -> list[dict]:
    """The points a plotly selection event holds (click, box or lasso), as dicts."""
    if not event:
        return []
    selection = event.get("selection", {}) if isinstance(event, dict) else getattr(event, "selection", {})
    points = selection.get("points", []) if isinstance(selection, dict) else getattr(selection, "points", [])
    return [p for p in points if isinstance(p, dict)]


def ids_from_chart_event(event) -> list[str]:
    """Adapter ids of the points a plotly selection event holds (click, box or lasso)."""
    ids = []
    for p in chart_points(event):
        cd = p.get("customdata")
        if isinstance(cd, (list, tuple)):
            cd = cd[0] if cd else None
        if isinstance(cd, str) and cd not in ids:
            ids.append(cd)
    return ids


def table_rows(event) -> tuple[int, ...]:
    if not event:
        return ()
    selection = event.get("selection", {}) if isinstance(event, dict) else getattr(event, "selection", {})
    return tuple(selection.get("rows", []) if isinstance(selection, dict) else getattr(selection, "rows", []))


def ids_from_table_event(event, shown_ids: list[str]) -> list[str]:
    return [shown_ids[r] for r in table_rows(event) if 0 <= r < len(shown_ids)]


def apply_event(state: dict, source: str, ids: list[str], fingerprint=None, add: bool = False) -> bool:
    """Replace the selection with ids when source's event is new (add: join them to it); returns whether
    it changed.

    state holds 'selected' (ids) and 'seen' (source -> the ids of its last event), so a rerun that
    replays an old event does not undo a newer selection made elsewhere. An empty event never
    clears the selection: plotly and the table send one whenever the figure or data change, and
    the selection must survive that; the Clear button clears it. fingerprint identifies the raw
    event (default: the ids); table events pass their row numbers, which keep their old values
    when the table's rows change and must not be re-read against the new rows.
    """
    seen = state.setdefault("seen", {})
    fingerprint = tuple(ids) if fingerprint is None else fingerprint
    if not ids or seen.get(source) == fingerprint:
        seen[source] = fingerprint
        return False
    seen[source] = fingerprint
    chosen = list(dict.fromkeys([*state.get("selected", []), *ids])) if add else list(ids)
    if state.get("selected") == chosen:
        return False
    state["selected"] = chosen
    return True


def selection_state(family_name: str) -> dict:
    return st.session_state.setdefault("selection", {}).setdefault(family_name, {"selected": [], "seen": {}})


def selected_ids(family_name: str, valid: list[str]) -> list[str]:
    """The current selection, minus ids no longer in the family."""
    state = selection_state(family_name)
    state["selected"] = [i for i in state["selected"] if i in valid]
    return state["selected"]
