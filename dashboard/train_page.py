"""Train page: launch a new weighting as a background run of the library's own CLI, and watch it.

Jobs live on disk (jobs/<id>/status.json, log.txt): a reload or a server restart shows them as
they are. One job runs at a time per family; others queue. A finished run is evaluated by the CLI
and its point appears on the front, marked as new.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import common
from modpo import family as fam
from modpo import jobs
from modpo.pareto import suggest_weighting
from modpo.weights import normalize


def render_form(root, family) -> None:
    spec = family.spec
    recipe = fam.family_recipe(family)
    with st.form("new_weighting"):
        st.subheader("New weighting")
        try:
            rule = fam.family_labels_from(spec)
        except fam.FamilyError as e:
            rule = None
            st.error(common.literal(str(e)))
        whose = {None: f"the target's ({spec.target}), or where it gets no weight the objective with the most",
                 "largest": "the objective with the most weight (this family's rule)",
                 "all": "every objective's at once (this family's rule)"}.get(rule, f"{rule}'s (this family's rule)")
        st.caption(common.literal(f"Weights are scaled to sum to 1. MODPO divides by the weight of the objective whose "
                                  f"labels train the point: {whose}. All the weight on one objective is DPO on its "
                                  "labels; another objective's labels need the target's reward known, as with "
                                  "Bradley-Terry labels."))
        cols = st.columns(len(spec.objectives))
        default = suggest_weighting([[p.weights[o] for o in spec.objective_names] for p in family.points
                                     if p.weights and p.kind == "modpo"], len(spec.objectives), spec.target_index)
        raw = [c.number_input(f"w {common.literal(o.name)}", min_value=0.0, max_value=1.0, value=float(w),
                              step=0.05, key=f"w_{o.name}", help="default: the widest gap between the trained points")
               for c, o, w in zip(cols, spec.objectives, default)]
        c1, c2 = st.columns(2)
        steps = c1.number_input(
            "Steps",
            1,
            10_000,
            int(recipe.get("max_steps") or 20) if (recipe.get("max_steps") or 0) > 0 else 20,
            key="steps",
        )
        lr = c2.number_input(
            "Learning rate", 1e-6, 0.1, float(recipe.get("learning_rate", 5e-4)), format="%.5f", key="lr"
        )
        st.caption(
            common.literal(
                f"Trained like the family's other points: beta {spec.beta:g}, LoRA r "
                f"{recipe.get('lora_r', '?')} / alpha {recipe.get('lora_alpha', '?')}, then evaluated "
                "on its prompts with its settings."
            )
        )
        st.caption("A field outlined in red is out of its range (steps 1-10,000, weights 0-1, learning rate "
                   "1e-6-0.1): Train sends nothing until it is fixed.")
        submitted = st.form_submit_button("Train", type="primary")
    if submitted:
        try:
            weights = normalize(raw)
            job_id = jobs.submit(root, weights, int(steps), learning_rate=float(lr))
            state = next(j for j in jobs.refresh(root) if j["id"] == job_id)["state"]
            waiting = state == "queued"
            st.success(f"{'Queued' if waiting else 'Started'} job {job_id} for weights {weights}"
                       + (" (it starts when the running job ends)" if waiting else ""))
        except ValueError as e:
            st.error(common.literal(f"Cannot start the run at {raw}: {e}"))


FEW_VOTES = 10  # fewer decisive votes than this: the Train page warns that a family trained on them moves little


def render_votes_form(root, family) -> None:
    """Train a new family on this family's votes (Compare page): as the labels of a new objective, evaluated
    by the utility fitted to them, or of the target. A background sweep of the CLI (jobs.start_votes_family)."""
    spec = family.spec
    votes, _ = fam.read_votes(root, {p.id for p in family.points})
    decisive = sum(v["label"] in ("left", "right") for v in votes)
    with st.expander(f"Train a new family on your votes ({len(votes)} votes, {decisive} decisive)"):
        if not decisive:
            st.caption("Vote between answers on the Compare page first: the votes become training data here.")
            return
        choices = {}  # what the votes can label in this family, and why not where they cannot
        for choice, objective in (("a new objective", "human"), ("the target", spec.target)):
            try:
                jobs.votes_family_plan(family, objective)
                choices[choice] = None
            except ValueError as e:
                choices[choice] = str(e)
        usable = [c for c, why in choices.items() if why is None]
        for choice, why in choices.items():
            if why is not None:
                st.caption(common.literal(f"The votes cannot label {choice} of this family: {why}"))
        if not usable:
            return
        if decisive < FEW_VOTES:
            st.warning(f"Only {decisive} decisive vote(s): a family trained on so few pairs barely moves from "
                       "the base model. Vote more on the Compare page for a front worth reading.")
        with st.form("votes_family"):
            c1, c2 = st.columns(2)
            new_objective = c1.radio("The votes label", usable, key="votes_as",
                                     help=common.literal(f"the target is {spec.target}; a new objective is evaluated "
                                                         "by the utility fitted to the votes"))
            name = c2.text_input("New objective's name", "human", key="votes_objective")
            new_family = c1.text_input("New family's name", f"{root.name}-votes", key="votes_family_name")
            recipe = fam.family_recipe(family)
            steps = c2.number_input("Steps", 1, 10_000, int(recipe.get("max_steps") or 20)
                                    if (recipe.get("max_steps") or 0) > 0 else 20, key="votes_steps")
            grid = c1.select_slider("Weight grid step", [1.0, 0.5, 0.25], 0.5, key="votes_grid",
                                    help="1: the endpoints only; 0.5 or 0.25: also the interior weightings")
            submitted = st.form_submit_button("Train on the votes")
        if submitted:
            objective = name.strip() if new_objective == "a new objective" else spec.target
            try:
                new_root = jobs.start_votes_family(root, new_family.strip(), objective, int(steps), float(grid))
            except (ValueError, fam.FamilyError) as e:
                st.error(common.literal(f"Cannot start: {e}"))
                return
            st.success(common.literal(f"Started family {new_root.name}: pick it in the sidebar; its points appear "
                                      f"as they finish (log: {new_root.name}/votes-sweep.log)."))


def render_job(root, job: dict) -> None:
    state = job["state"]
    label = common.literal(f"{job['id']} · {job.get('adapter', '?')} · {state}"
                           + (f" ({job['phase']})" if job.get("phase") else ""))
    with st.expander(label, expanded=state in ("running", "queued", "failed")):
        total = job.get("total_steps") or (job.get("params") or {}).get("steps") or 1  # queued: the steps asked for
        step = job.get("step", 0) or 0
        training_left = common.time_left(job.get("started"), step, total) if state == "running" else ""
        st.progress(min(1.0, step / max(total, 1)), text=f"training: step {step} / {total}{training_left}")
        if job.get("phase") in ("evaluating", "evaluated") and job.get("eval_total"):
            done, answers = job.get("eval_done", 0), job["eval_total"]
            left = common.time_left(job.get("eval_started"), done, answers) if state == "running" else ""
            st.progress(min(1.0, done / answers), text=f"evaluating: {done} / {answers} answers generated "
                        f"(then scored and saved){left}")
        curve = job.get("loss_curve") or []
        if len(curve) >= 2:  # one point or none has no extent to draw (the browser warns "Infinite extent")
            st.line_chart(pd.DataFrame(curve, columns=["step", "loss"]).set_index("step"), height=180,
                          x_label="optimizer step", y_label="MODPO loss")
        if state == "failed":
            st.error(common.literal(job.get("error", "failed")))
        if state in ("failed", "cancelled") or st.toggle("Show log", key=f"log_{job['id']}"):
            st.code(jobs.log_tail(root, job["id"]) or "(empty log)", language=None)
        if state in ("queued", "running") and not job.get("refused") and st.button("Cancel", key=f"cancel_{job['id']}"):
            jobs.cancel(root, job["id"])
            st.rerun()


def render_jobs(root) -> None:
    """The job list; polled every second by a fragment only while a job is queued or running."""
    all_jobs = jobs.refresh(root)
    if not all_jobs:
        st.caption("No training runs yet.")
        return
    if jobs.active(all_jobs):
        st.fragment(_poll_jobs, run_every=1.0)(root)
    else:
        for job in reversed(all_jobs):
            render_job(root, job)


def _poll_jobs(root) -> None:
    all_jobs = jobs.refresh(root)
    for job in reversed(all_jobs):
        render_job(root, job)
    if not jobs.active(all_jobs):
        st.rerun()  # the last job ended: a full rerun shows its point and stops the polling


def render() -> None:
    st.title("Train a new weighting")
    picked = common.pick_family()
    if picked is None:
        return
    root, family, _ = picked
    render_form(root, family)
    render_votes_form(root, family)
    st.subheader("Runs")
    render_jobs(root)
