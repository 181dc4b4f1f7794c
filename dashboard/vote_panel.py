"""Votes on the Compare page, and the weighting they point to (shown on the Compare and Front pages).

A vote between two answers to the shown prompt is saved at once into the family's data/votes.jsonl
(modpo.family.append_vote: locked, atomic). From all the family's votes, modpo.votes estimates the
weighting the user prefers (a Bradley-Terry posterior over the simplex) and suggests the next pair,
the one whose outcome that posterior can least predict. Blind mode hides ids, weights and scores and
shuffles the sides until the vote is cast, then moves on to the next suggested pair by itself.

Going to a pair (a suggestion, or the next blind pair) is a request in session state that the Compare
page applies before its widgets are drawn (apply_pending).
"""
from __future__ import annotations

import random
import uuid

import streamlit as st

from dashboard import common
from modpo import family as fam
from modpo import votes as vt

LABELS = {"left": "Left better", "right": "Right better", "tie": "Tie", "both bad": "Both bad"}
BLIND_LABELS = {"left": "A better", "right": "B better", "tie": "Tie", "both bad": "Both bad"}


def session_id() -> str:
    return st.session_state.setdefault("_vote_session", uuid.uuid4().hex[:16])


def vote_state(family_name: str) -> dict:
    return st.session_state.setdefault("votes", {}).setdefault(family_name, {"pair": None, "reveal": None})


# ---- going to a pair: applied by the Compare page before its widgets exist ------------------------

def request_pair(family_name: str, prompt: str, ids) -> None:
    """Show prompt with the two points ids next, and vote between them (their sides shuffled)."""
    ids = list(ids)
    random.shuffle(ids)
    st.session_state["_pending_pair"] = {"family": family_name, "prompt": prompt, "ids": ids}


def apply_pending(family_name: str, held_out: list[str]) -> None:
    """Set the prompt widgets to the requested pair's prompt; the pair's points join the page's columns
    (pair_ids) without changing the selection."""
    pending = st.session_state.pop("_pending_pair", None)
    if not pending or pending["family"] != family_name:
        return
    if pending["prompt"] in held_out:
        st.session_state["prompt_source"] = "held-out set"
        st.session_state["held_out_prompt"] = pending["prompt"]
    else:
        st.session_state["prompt_source"] = "type your own"
        st.session_state["own_prompt"] = pending["prompt"]
    vote_state(family_name)["pair"] = {"prompt": pending["prompt"], "ids": pending["ids"]}


# ---- the estimate ---------------------------------------------------------------------------------

class KnownIds:
    """The family's point ids, and the Any-weighting columns of its conditioned adapters ('<id>-any-...')."""

    def __init__(self, root, family):
        self.ids = {p.id for p in family.points}
        self.prefixes = tuple(f"{c}-any-" for c in fam.list_conditioned(root))

    def __contains__(self, point_id) -> bool:
        return point_id in self.ids or (bool(self.prefixes) and str(point_id).startswith(self.prefixes))


def family_votes(root, family) -> tuple[list[dict], list[str]]:
    return fam.read_votes(root, known_ids=KnownIds(root, family))


def estimate(family, votes: list[dict], extra=()) -> tuple[vt.Estimate, list[dict]] | None:
    """(estimate, pool) from the votes; None when the family has no scored answers to work from."""
    spec = family.spec
    pool = vt.answer_pool(family.points, spec.objective_names, extra)
    if len(pool) < 2:
        return None
    return vt.estimate_weighting(spec.objective_names, [o.maximize for o in spec.objectives], votes, pool), pool


def describe(est: vt.Estimate) -> str:
    """'relevance 0.41 ± 0.18 · sentiment ...' (markdown-safe)."""
    return common.literal(" · ".join(f"{k} {est.weights[k]:.2f} ± {est.sd[k]:.2f}" for k in est.objectives))


def nearest_point(family, est: vt.Estimate):
    """(point, L1) of the point whose weighting is closest to the estimate (any kind with weights)."""
    from modpo.choose import nearest
    weighted = {p.id: [p.weights[k] for k in est.objectives] for p in family.points
                if p.weights and all(k in p.weights for k in est.objectives)}
    hit = nearest([est.weights[k] for k in est.objectives], weighted)
    return (family.point(hit[0]), hit[1]) if hit else None


def asked_pairs(votes: list[dict]) -> set:
    return {vt.pair_key(v["prompt"], [p["id"] for p in v["points"]]) for v in votes}


def render_estimate_line(family, votes: list[dict], problems: list[str]) -> None:
    found = estimate(family, votes)
    if found is None:
        return
    est, _ = found
    near = nearest_point(family, est)
    text = (f"Your weighting from {est.votes_used} vote(s): {describe(est)}" if est.votes_used else
            "No votes yet: the estimate is the flat prior")
    if near and est.votes_used:
        text += f"; nearest point {common.literal(near[0].id)} (L1 {near[1]:.2f})"
    st.caption(text)
    for problem in problems:
        st.warning(common.literal(problem))


# ---- the vote -------------------------------------------------------------------------------------

def answer_record(point, response: dict, settings) -> dict:
    return {"id": point.id, "text": response["text"], "weights": point.weights,
            "settings": common.answer_settings(point, response, settings),
            "scores": response.get("scores") or {}}


def pair_ids(family_name: str, prompt: str | None) -> list[str]:
    pair = vote_state(family_name)["pair"]
    return list(pair["ids"]) if pair and pair["prompt"] == prompt else []


def current_pair(family_name: str, prompt: str, answered: list[str]) -> list[str] | None:
    pair = vote_state(family_name)["pair"]
    if pair and pair["prompt"] == prompt and all(i in answered for i in pair["ids"]):
        return list(pair["ids"])
    return None


def render(root, family, points: list, prompt: str, settings, answers: dict, blind: bool) -> None:
    """The vote between two of the shown answers (answers: point id -> response or None)."""
    st.subheader("Vote")
    state = vote_state(root.name)
    if state.get("reveal"):
        st.success(common.literal(state["reveal"]))
    answered = [p.id for p in points if answers.get(p.id)]
    if len(answered) < 2:
        st.caption("Two answers to this prompt are needed to vote between them: select more points or Generate.")
        return
    pair = current_pair(root.name, prompt, answered)
    if blind:
        if pair is None:
            pair = random.sample(answered, 2)
            state["pair"] = {"prompt": prompt, "ids": pair}
        left_id, right_id = pair
        c1, c2 = st.columns(2)
        for col, name, pid in ((c1, "Answer A", left_id), (c2, "Answer B", right_id)):
            with col:
                st.markdown(f"**{name}**")
                st.text(answers[pid]["text"])  # no id, weights or scores until the vote is cast
        labels = BLIND_LABELS
    else:
        pair = pair or answered[:2]
        c1, c2 = st.columns(2)
        left_id = c1.selectbox("Left", answered, index=answered.index(pair[0]), key="vote_left")
        right_id = c2.selectbox("Right", answered, index=answered.index(pair[1]), key="vote_right")
        if left_id == right_id:
            st.info("Pick two different answers to vote between.")
            return
        labels = LABELS
    buttons = st.columns(4)
    for col, (label, text) in zip(buttons, labels.items()):
        if col.button(text, key=f"cast_{label.replace(' ', '_')}", use_container_width=True):
            cast(root, family, points, prompt, settings, answers, (left_id, right_id), label, blind)
            st.rerun()


def cast(root, family, points, prompt, settings, answers, ids, label: str, blind: bool) -> None:
    """Save the vote, say what it was, and (blind) go on to the next most informative pair."""
    by_id = {p.id: p for p in points}
    record = vt.make_vote(prompt, [answer_record(by_id[i], answers[i], settings) for i in ids], label,
                          session_id(), blind=blind)
    state = vote_state(root.name)
    try:
        count = fam.append_vote(root, record)
    except (fam.FamilyError, OSError) as e:
        state["reveal"] = None
        st.session_state["_vote_error"] = f"The vote was not saved: {e}"
        return
    shown = f"A was {ids[0]}, B was {ids[1]}" if blind else f"left {ids[0]}, right {ids[1]}"
    state["reveal"] = f"Saved vote {count} ({label}; {shown})."
    state["pair"] = None
    if blind:
        votes, _ = family_votes(root, family)
        found = estimate(family, votes)
        suggestion = vt.suggest_pair(found[0], found[1], asked_pairs(votes)) if found else None
        if suggestion:
            request_pair(root.name, suggestion["prompt"], suggestion["ids"])


# ---- the Front page's section ------------------------------------------------------------------------

def go_to_compare() -> None:
    """Open the Compare page (registered by app.py); under a bare page test there is none to open."""
    page = st.session_state.get("_pages", {}).get("compare")
    if page is not None:
        st.switch_page(page)
    st.info("The pair is waiting on the Compare page.")


def render_front_section(root, family) -> None:
    """Your weighting from votes: the estimate and its region on the simplex, the nearest point, and
    the most informative pair to compare next (one click opens it on the Compare page)."""
    from modpo.plots import weights_figure
    st.subheader("Your weighting, from votes")
    votes, problems = family_votes(root, family)
    found = estimate(family, votes)
    if found is None:
        st.caption("Votes need the family's evaluated answers; evaluate the family first.")
        return
    est, pool = found
    for problem in problems:
        st.warning(common.literal(problem))
    near = nearest_point(family, est)
    if est.votes_used:
        post = est.posterior
        points = {p.id: [p.weights[k] for k in est.objectives] for p in family.points
                  if p.weights and all(k in p.weights for k in est.objectives)}
        fig = weights_figure(est.objectives, post.grid, post.weights, post.credible(), post.mean, points,
                             near[0].id if near else None)
        st.plotly_chart(fig, key="weights_chart", config={"displaylogo": False})
        st.caption(f"From {est.votes_used} vote(s): {describe(est)} (posterior mean ± sd; the shaded region holds "
                   "90% of the posterior)." + (f" Nearest point: {common.literal(near[0].id)} "
                                               f"(L1 {near[1]:.2f})." if near else ""))
    else:
        st.caption("No votes yet. Vote between two answers on the Compare page, and the weighting your votes "
                   "point to shows here, with its uncertainty and the nearest point.")
    suggestion = vt.suggest_pair(est, pool, asked_pairs(votes))
    if suggestion is None:
        st.caption("Every pair of saved answers has a vote.")
        return
    a, b = suggestion["ids"]
    if st.button(f"Compare the most informative pair next: {common.literal(a)} vs {common.literal(b)} "
                 f"({suggestion['gain']:.2f} nats)",
                 key="suggested_pair", help="the pair whose vote the current estimate can least predict; its "
                 "answers are saved, so they show at once"):
        request_pair(root.name, suggestion["prompt"], suggestion["ids"])
        go_to_compare()
