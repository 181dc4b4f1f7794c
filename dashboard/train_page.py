"""Train page: launch a new weighting as a background run of the library's own CLI, and watch it.

Jobs live on disk (jobs/<id>/status.json, log.txt): a reload or a server restart shows them as
they are. One job runs at a time per family; others queue. A finished run is evaluated by the CLI
and its point appears on the front, marked as new.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import common
from modpo import jobs

def parse_weights(values: list[float]) -> list[float]:
    """Weights from the form, scaled onto the simplex; a clear ValueError for values that cannot be."""
    from modpo.weights import validate_weights
    if any(v != v or v < 0 for v in values):
        raise ValueError(f"weights must be numbers >= 0, got {values}")
    total = sum(values)
    if total <= 0:
        raise ValueError("at least one weight must be > 0 (they are scaled to sum to 1)")
    return validate_weights([round(v / total, 4) for v in values[:-1]] + [round(1 - sum(round(v / total, 4) for v in values[:-1]), 4)])


def render_form(root, family) -> None:
    spec = family.spec
    with st.form("new_weighting"):
        st.subheader("New weighting")
        st.caption(f"Weights are scaled to sum to 1. The target objective ({spec.target}) must get a weight > 0: "
                   "MODPO divides by it.")
        cols = st.columns(len(spec.objectives))
        raw = [c.number_input(f"w {o.name}", min_value=0.0, max_value=1.0, value=round(1 / len(spec.objectives), 2),
                              step=0.05, key=f"w_{o.name}") for c, o in zip(cols, spec.objectives)]
        c1, c2, c3 = st.columns(3)
        steps = c1.number_input("Steps", 1, 10_000, 20, key="steps")
        lr = c2.number_input("Learning rate", 1e-6, 0.1, float(spec.notes.get("train_config", {}).get("learning_rate", 5e-4)),
                             format="%.5f", key="lr")
        beta = c3.number_input("beta", 0.001, 10.0, float(spec.beta), format="%.3f", key="beta")
        submitted = st.form_submit_button("Train", type="primary")
    if submitted:
        try:
            ordered = [raw[spec.objective_names.index(o.name)] for o in spec.objectives]
            weights = parse_weights(ordered)
            extra = _family_lora_args(spec)
            job_id = jobs.submit(root, weights, int(steps), float(lr), float(beta), extra)
            st.success(f"Queued job {job_id} for weights {weights}")
        except ValueError as e:
            st.error(f"Cannot start this run: {e}")


def _family_lora_args(spec) -> list[str]:
    """New runs use the family's own LoRA recipe, so their points compare with the trained ones."""
    cfg = spec.notes.get("train_config", {})
    args = []
    for key, flag in (("lora_r", "--lora-r"), ("lora_alpha", "--lora-alpha"), ("batch_size", "--batch-size"),
                      ("max_length", "--max-length")):
        if key in cfg:
            args += [flag, f"{cfg[key]:g}" if isinstance(cfg[key], float) else str(cfg[key])]
    return args


def render_job(root, job: dict) -> None:
    state = job["state"]
    label = f"{job['id']} · {job.get('adapter', '?')} · {state}" + (f" ({job['phase']})" if job.get("phase") else "")
    with st.expander(label, expanded=state in ("running", "queued", "failed")):
        total = job.get("total_steps") or job.get("steps_requested") or 1
        step = job.get("step", 0) or 0
        st.progress(min(1.0, step / max(total, 1)), text=f"step {step} / {total}")
        curve = job.get("loss_curve") or []
        if curve:
            st.line_chart(pd.DataFrame(curve, columns=["step", "loss"]).set_index("step"), height=180)
        if state == "failed":
            st.error(job.get("error", "failed"))
        if state in ("failed", "cancelled") or st.toggle("Show log", key=f"log_{job['id']}"):
            st.code(jobs.log_tail(root, job["id"]) or "(empty log)", language=None)
        if state in ("queued", "running") and st.button("Cancel", key=f"cancel_{job['id']}"):
            jobs.cancel(root, job["id"])
            st.rerun()


@st.fragment(run_every=1.0)
def render_jobs(root) -> None:
    """Polls the job files every second (a fragment: the rest of the page is not rerun)."""
    all_jobs = jobs.refresh(root)
    if not all_jobs:
        st.caption("No training runs yet.")
        return
    for job in reversed(all_jobs):
        render_job(root, job)


def render() -> None:
    st.title("Train a new weighting")
    picked = common.pick_family()
    if picked is None:
        return
    root, family, _ = picked
    render_form(root, family)
    st.subheader("Runs")
    render_jobs(root)
