"""Compare page: what the selected adapters say to one prompt, side by side.

All selected points answer through the library's one answering pipeline (evaluate.answer_points,
via the shared model service in common.py): adapters and the base model in one batched generate call
(peft adapter_names per row), mixes from their sources. Responses are cached by (point, prompt,
settings); the samples
saved at evaluation time show at once, before any model loads. Model output is shown as plain
text, never as HTML or markdown.
"""
from __future__ import annotations

import streamlit as st

from dashboard import common
from modpo import family as fam

MAX_PROMPT_CHARS = 2000
EVAL_KEY = "eval"


def order_points(family, ids: list[str]) -> list:
    """Base model first, then by the target objective's weight, highest first."""
    target = family.spec.target
    points = [family.point(i) for i in ids]
    return sorted(points, key=lambda p: (p.kind != "base", -((p.weights or {}).get(target, 2.0)), p.id))


def saved_sample(point, prompt: str, settings) -> dict | None:
    """The response saved at evaluation, when it was made with these settings."""
    if not point.eval:
        return None
    ev = point.eval.get("settings", {})
    if (ev.get("max_new_tokens"), ev.get("temperature"), ev.get("seed")) != (
        settings.max_new_tokens,
        settings.temperature,
        settings.seed if settings.temperature > 0 else ev.get("seed"),
    ):
        return None
    for s in point.eval.get("samples", []):
        if s["prompt"] == prompt:
            return {"text": s["response"], "scores": s["scores"]}
    return None


def eval_max_new_tokens(family) -> int:
    """The evaluation's response cap, so the saved samples match the page's default settings."""
    from modpo.config import EvalSettings
    return EvalSettings.from_recorded(fam.recorded_eval_settings(family)).max_new_tokens


def render_settings(family):
    """The page's generation settings as EvalSettings (with the family's trimming), so answers here are
    made and scored as the front was measured."""
    from modpo.config import EvalSettings
    c1, c2, c3 = st.columns(3)
    max_new = c1.slider("Max new tokens", 1, 256, min(256, eval_max_new_tokens(family)), key="max_new_tokens",
                        help="the default is the evaluation's, so the saved samples show at once")
    mode = c2.radio("Decoding", ["greedy", "sample"], horizontal=True, key="decoding")
    temperature = c3.slider("Temperature", 0.1, 2.0, 0.8, key="temperature", disabled=mode == "greedy")
    seed = c3.number_input("Seed", 0, 2**31 - 1, 0, key="seed", disabled=mode == "greedy")
    trim = bool(fam.recorded_eval_settings(family).get("trim_capped"))
    if trim:
        st.caption("As in this family's evaluation, an answer that hits the token cap is shown and scored up to "
                   "its last complete sentence.")
    return EvalSettings(max_new_tokens=max_new, temperature=0.0 if mode == "greedy" else float(temperature),
                        seed=int(seed) if mode == "sample" else 0, trim_capped=trim)


def render_prompt(root) -> str | None:
    from modpo.family import read_eval_prompts
    held_out = read_eval_prompts(root) or []
    source = st.radio("Prompt", ["held-out set", "type your own"], horizontal=True, key="prompt_source",
                      index=0 if held_out else 1)
    if source == "held-out set" and held_out:
        return st.selectbox("Held-out prompt", held_out, key="held_out_prompt")
    text = st.text_area("Your prompt", key="own_prompt", height=100,
                        help=f"at most {MAX_PROMPT_CHARS} characters")
    problem = prompt_problem(text)
    if problem:
        (st.info if not text.strip() else st.error)(problem)
        return None
    return text


def prompt_problem(text: str) -> str | None:
    """What is wrong with a typed prompt, or None."""
    if len(text) > MAX_PROMPT_CHARS:
        return f"The prompt is {len(text)} characters long; the limit is {MAX_PROMPT_CHARS}. Shorten it."
    if not text.strip():
        return "Type a prompt to compare the adapters on it."
    return None


def render_columns(family, points, prompt, settings, service: common.ModelService | None) -> int:
    """One column per point; returns how many responses are still missing."""
    missing = 0
    cols = st.columns(len(points))
    for col, p in zip(cols, points):
        with col:
            st.markdown(f"**{common.literal(p.id)}**")
            if p.weights:
                st.caption(common.literal(", ".join(f"{k} {v:.2f}" for k, v in p.weights.items())))
            else:
                st.caption(p.kind)
            cached = service.responses.get((p.id, prompt, settings)) if service else None
            response = cached or saved_sample(p, prompt, settings)
            if response is None:
                missing += 1
                st.caption("not generated yet")
                continue
            st.text(response["text"])  # plain text: model output is never rendered as markup
            st.caption(common.literal(" · ".join(f"{k} {v:.3g}" for k, v in response["scores"].items()))
                       + ("" if cached else " · saved at evaluation"))
    return missing


def render() -> None:
    st.title("Compare generations")
    picked = common.pick_family()
    if picked is None:
        return
    root, family, table = picked
    ids = table["id"].tolist()
    state = common.selection_state(root.name)
    chosen = st.multiselect("Adapters", ids, default=common.selected_ids(root.name, ids), key="compare_ids",
                            help="the same selection as the Front page")
    if chosen != state["selected"]:
        state["selected"] = list(chosen)
    if not chosen:
        st.info("Select adapters on the Front page (click, box or lasso) or above.")
        return
    points = order_points(family, ["base"] + [i for i in chosen if i != "base"] if "base" in ids else chosen)
    prompt = render_prompt(root)
    settings = render_settings(family)
    if prompt is None:
        return
    service = st.session_state.get("_service_" + str(root))
    if st.button("Generate", type="primary", key="generate"):
        service = common.model_service(str(root), family.spec.base_model)
        st.session_state["_service_" + str(root)] = service
        todo = [p for p in points if (p.id, prompt, settings) not in service.responses]
        with st.spinner(f"Generating {len(todo)} answers of up to {settings.max_new_tokens} tokens "
                        f"({len(todo)} policies in one batch)..."):
            service.answer(family, points, prompt, settings)
    missing = render_columns(family, points, prompt, settings, service)
    if missing:
        st.caption(f"{missing} response(s) not generated for these settings yet: press Generate.")
