"""Compare page: what the selected adapters say to one prompt, side by side.

All selected points answer through the library's one answering pipeline (evaluate.answer_points,
via the shared model service in common.py): adapters and the base model in one batched generate call
(an adapter per row, modpo/routing.py), mixes from their sources. Responses are cached by (point, prompt,
settings); the samples
saved at evaluation time show at once, before any model loads. Model output is shown as plain
text, never as HTML or markdown.
"""
from __future__ import annotations

import streamlit as st

from dashboard import any_weighting, common, vote_panel
from modpo import family as fam

MAX_PROMPT_CHARS = 2000
EVAL_KEY = "eval"


def order_points(family, ids: list[str]) -> list:
    """Base model first, then by the target objective's weight, highest first."""
    target = family.spec.target
    points = [family.point(i) for i in ids]
    return sorted(points, key=lambda p: (p.kind != "base", -((p.weights or {}).get(target, 2.0)), p.id))


def saved_sample(point, prompt: str, settings) -> dict | None:
    """The response saved at evaluation, when it was made with these settings (cap, decoding, seed when sampled,
    trimming, the rule against loops: EvalSettings.differs_from)."""
    ev = (point.eval or {}).get("settings")
    if not ev or settings.differs_from(ev):
        return None
    for s in point.eval.get("samples", []):
        if s["prompt"] == prompt:
            return {"text": s["response"], "scores": s["scores"], "capped": s.get("capped")}
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
    rules = EvalSettings.answer_rules_of(fam.recorded_eval_settings(family))
    if rules["trim_capped"]:
        st.caption("As in this family's evaluation, an answer that hits the token cap is shown and scored up to "
                   "its last complete sentence.")
    if rules["no_repeat_ngram"]:
        st.caption(f"As in this family's evaluation, no answer repeats a run of {rules['no_repeat_ngram']} tokens.")
    return EvalSettings(max_new_tokens=max_new, temperature=0.0 if mode == "greedy" else float(temperature),
                        seed=int(seed) if mode == "sample" else 0, **rules)


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


def answer_of(point, prompt: str, settings, service) -> dict | None:
    """The point's answer to prompt at settings: generated this session, else saved at evaluation."""
    cached = service.responses.get((point.id, prompt, settings)) if service else None
    if cached:
        return {**cached, "source": "generated"}
    saved = saved_sample(point, prompt, settings)
    return {**saved, "source": common.SAVED} if saved else None


def word_diff(baseline: str, text: str) -> list[tuple[str, str]]:
    """[(op, words)] turning baseline into text word by word: op is "same", "added" or "removed"."""
    import difflib
    old, new = baseline.split(), text.split()
    out = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes():
        if op == "equal":
            out.append(("same", " ".join(new[j1:j2])))
            continue
        if i2 > i1:
            out.append(("removed", " ".join(old[i1:i2])))
        if j2 > j1:
            out.append(("added", " ".join(new[j1:j2])))
    return out


def diff_markdown(baseline: str, text: str) -> str:
    """The word diff as markdown: added words on green, removed ones struck through on red. Every word
    goes through common.literal, so model output stays text."""
    style = {"same": "{}", "added": ":green-background[{}]", "removed": ":red-background[~~{}~~]"}
    return " ".join(style[op].format(common.literal(words)) for op, words in word_diff(baseline, text))


def cap_note(response: dict, settings) -> str:
    if not response.get("capped"):
        return ""
    return (f" · hit the {settings.max_new_tokens}-token cap" +
            (", shown to its last complete sentence" if settings.trim_capped else ""))


def scores_help(spec) -> str:
    """What each score under an answer is, and which way is better (a tooltip)."""
    from modpo.scorers import meaning
    return common.literal("; ".join(f"{o.name}: {meaning(o.scorer) or o.scorer}, "
                                    f"{'higher' if o.maximize else 'lower'} is better" for o in spec.objectives)
                          + ". One answer's scores are noisy: the front is the mean over the held-out prompts.")


def render_columns(points, prompt, settings, answers: dict, baseline: str | None, diff: bool,
                   score_help: str | None = None) -> dict:
    """One column per point; returns point id -> an empty slot for each answer still missing."""
    slots = {}
    cols = st.columns(len(points))
    for col, p in zip(cols, points):
        with col:
            st.markdown(f"**{common.literal(p.id)}**" + (" · pinned baseline" if p.id == baseline else ""))
            if p.weights:
                st.caption(common.literal(", ".join(f"{k} {v:.2f}" for k, v in p.weights.items())))
            else:
                st.caption(p.kind)
            response = answers.get(p.id)
            if response is None:
                slots[p.id] = st.empty()
                slots[p.id].caption("not generated yet")
                continue
            st.text(response["text"])  # plain text: model output is never rendered as markup
            st.caption(common.literal(" · ".join(f"{k} {v:.3g}" for k, v in response["scores"].items()))
                       + common.literal(cap_note(response, settings))
                       + ("" if response["source"] == "generated" else f" · {common.SAVED}"), help=score_help)
            if diff and baseline and p.id != baseline and answers.get(baseline):
                st.markdown(diff_markdown(answers[baseline]["text"], response["text"]))
    return slots


def stream_answers(service, family, points, prompt, settings, slots: dict) -> None:
    """Generate the missing answers in a worker thread (it never calls st.*) and show each one grow in
    its column as tokens arrive; the page's final render shows them with their scores."""
    import threading
    import time

    from modpo.generate import RowStreamer

    todo = [p for p in points if (p.id, prompt, settings) not in service.responses]
    if not todo:
        return
    status = st.empty()
    status.caption(f"Generating {len(todo)} answer(s) of up to {settings.max_new_tokens} tokens, {len(todo)} "
                   f"policies in one batch (about {0.1 * settings.max_new_tokens + 2:.0f} s on 2 CPU cores)...")
    streamer, failure = RowStreamer(service.tokenizer.eos_token_id), []

    def work():
        try:
            service.answer(family, points, prompt, settings, streamer=streamer)
        except Exception as e:  # noqa: BLE001 - shown on the page below
            failure.append(e)

    worker = threading.Thread(target=work, daemon=True)
    started = time.time()
    worker.start()
    while worker.is_alive():
        worker.join(0.3)
        for row, (pid, _) in enumerate(streamer.rows):
            if pid in slots and streamer.tokens.get(row):
                slots[pid].text(streamer.text(service.tokenizer, row))
        made = sum(len(t) for t in streamer.tokens.values())
        status.caption(f"Generating {len(todo)} answer(s): {made} tokens in {time.time() - started:.0f} s...")
    status.empty()
    if failure:
        st.error(common.literal(f"Generation failed: {failure[0]}"))


def shown_answers(points, prompt, settings, answers: dict) -> list[dict]:
    """What the columns show, for download: one row per answer with its id, weights, settings, scores."""
    return [{"id": p.id, "kind": p.kind, "weights": p.weights, "prompt": prompt, "answer": answers[p.id]["text"],
             "capped": answers[p.id].get("capped"), "source": answers[p.id]["source"],
             "scores": answers[p.id]["scores"], "settings": common.answer_settings(p, answers[p.id], settings)}
            for p in points if answers.get(p.id)]


def render_downloads(rows: list[dict]) -> None:
    import json

    import pandas as pd
    if not rows:
        return
    flat = pd.json_normalize(rows, sep=".")
    c1, c2, _ = st.columns([1, 1, 4])
    c1.download_button("Download JSON", json.dumps(rows, indent=2), "answers.json", "application/json",
                       key="download_json")
    c2.download_button("Download CSV", flat.to_csv(index=False), "answers.csv", "text/csv", key="download_csv")


def render() -> None:
    st.title("Compare generations")
    picked = common.pick_family()
    if picked is None:
        return
    root, family, table = picked
    from modpo.family import read_eval_prompts
    vote_panel.apply_pending(root.name, read_eval_prompts(root) or [])
    ids = table["id"].tolist()
    state = common.selection_state(root.name)
    c1, c2 = st.columns([3, 1])
    chosen = c1.multiselect("Adapters", ids, default=common.selected_ids(root.name, ids), key="compare_ids",
                            help="the same selection as the Front page")
    if chosen != state["selected"]:
        state["selected"] = list(chosen)
    baseline = c2.selectbox("Pinned baseline", ["(none)"] + ids, key="baseline",
                            help="a column that stays while the selection changes; the others can show their "
                                 "word differences from it")
    baseline = None if baseline == "(none)" else baseline
    prompt = render_prompt(root)
    pair = vote_panel.pair_ids(root.name, prompt)
    wanted = list(dict.fromkeys([*([baseline] if baseline else []), *chosen, *pair]))
    if not wanted and not fam.list_conditioned(root):
        st.info("Select adapters on the Front page (click, box or lasso) or above.")
        return
    points = order_points(family, ["base"] + [i for i in wanted if i != "base"] if "base" in ids else wanted)
    if baseline:
        points = [family.point(baseline)] + [p for p in points if p.id != baseline]
    points += any_weighting.render(root, family)
    if not points:
        st.info("Select adapters on the Front page (click, box or lasso) or above, or show a weighting of the "
                "conditioned adapter.")
        return
    settings = render_settings(family)
    if prompt is None:
        return
    c1, c2, c3 = st.columns([1, 1, 2])
    generate = c1.button("Generate", type="primary", key="generate")
    blind = c2.toggle("Blind vote", key="blind", help="hide ids, weights and scores, and shuffle the sides, until "
                                                       "the vote is cast; then the next most informative pair")
    diff = c3.toggle("Word differences from the baseline", key="diff", disabled=baseline is None)
    service = st.session_state.get("_service_" + str(root))
    if generate:
        service = common.model_service(str(root), family.spec.base_model)
        st.session_state["_service_" + str(root)] = service
    answers = {p.id: answer_of(p, prompt, settings, service) for p in points}
    if blind:
        st.caption(f"{sum(a is not None for a in answers.values())} answers ready; ids and weights are hidden.")
        slots = {}
    else:
        slots = render_columns(points, prompt, settings, answers, baseline, diff, scores_help(family.spec))
    # a new Any-weighting column answers at once once the model is loaded (a slider move or a click on the
    # triangle regenerates the prompt at that w); other missing answers wait for Generate
    tried = st.session_state.setdefault("_any_auto_tried", set())  # once each: a failure never loops
    moved = [p for p in points if any_weighting.ANY in p.id and answers[p.id] is None
             and (p.id, prompt, settings) not in tried]
    tried.update((p.id, prompt, settings) for p in moved if service is not None)
    if generate or (service is not None and moved and not blind):
        stream_answers(service, family, points if generate else moved, prompt, settings, slots)
        st.rerun()
    missing = sum(a is None for a in answers.values())
    if missing:
        st.caption(f"{missing} response(s) not generated for these settings yet: press Generate.")
    if not blind:
        render_downloads(shown_answers(points, prompt, settings, answers))
    if st.session_state.get("_vote_error"):
        st.error(common.literal(st.session_state.pop("_vote_error")))
    vote_panel.render(root, family, points, prompt, settings, answers, blind)
    votes, problems = vote_panel.family_votes(root, family)
    vote_panel.render_estimate_line(family, votes, problems)
