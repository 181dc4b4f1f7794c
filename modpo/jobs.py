"""Training jobs as background subprocesses of the CLI: queue, start, poll, cancel.

A job on disk holds only validated *parameters* (schema.JOB_PARAMS: weights, steps, learning rate,
LoRA settings); the command, `python -m modpo train --family F --job-id ID --weights ...`, is built
here from them at launch. Nothing read from a family folder ever becomes an argv: a status.json that
holds anything else (a "command", unknown keys, values out of range) is refused and never launched.

The training process writes its own status.json as it goes (running, evaluating, done | failed);
this module writes only launch.json (the pid it started), launches the next queued job when none
runs, and marks failed the jobs whose process died without saying so (SIGKILL, OOM, a server
restart), once that process is gone. One job runs at a time per family; a lock file serialises the
check-and-start across sessions.
"""
from __future__ import annotations

import fcntl
import math
import os
import signal
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

from . import family as fam
from . import schema
from .config import TrainConfig
from .weights import loss_plan, no_target_reward, weights_id

_children: dict[int, subprocess.Popen] = {}  # jobs this process started, so it can reap them
PARAM_FLAGS = {"learning_rate": "--lr", "lora_r": "--lora-r", "lora_alpha": "--lora-alpha",
               "batch_size": "--batch-size", "max_length": "--max-length", "seed": "--seed"}
ACTIVE = ("queued", "running")


@contextmanager
def _locked(root: Path):
    lock = fam.within(root, Path(root) / "jobs" / ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def check_params(spec: fam.FamilySpec, params: dict, where: str = "job parameters") -> dict:
    """params validated against the schema, the family's objectives and TrainConfig's rules."""
    schema.validate("status", {"schema_version": schema.SCHEMA_VERSION, "id": "check", "state": "queued",
                               "params": params}, where)
    try:
        objective, ordered = loss_plan(spec.objective_names, spec.target, params["weights"],
                                       fam.family_labels_from(spec))
        if objective != spec.target and len(ordered) > 1 and not spec.reward_known(spec.target):
            raise ValueError(no_target_reward(spec.target, objective))
        TrainConfig(**{k: params[k] for k in PARAM_FLAGS if k in params})
    except ValueError as e:
        raise fam.FamilyError(f"{where}: {e}") from None
    return params


def train_command(root: Path, job_id: str, params: dict) -> list[str]:
    """The CLI invocation of a job, built from its checked parameters: an argument list (never a shell
    string), every value a number formatted here, so no text from disk reaches it."""
    argv = [sys.executable, "-m", "modpo", "train", "--family", str(Path(root).resolve()),
            f"--job-id={fam.check_id(job_id)}", "--weights=" + ",".join(f"{float(w)!r}" for w in params["weights"]),
            f"--steps={int(params['steps'])}"]
    for key, flag in PARAM_FLAGS.items():
        if key in params:
            value = params[key]
            argv.append(f"{flag}={float(value)!r}" if isinstance(value, float) else f"{flag}={int(value)}")
    if params.get("evaluate") is False:
        argv.append("--no-eval")
    return argv


def submit(root: Path, weights: list[float], steps: int, **overrides) -> str:
    """Queue a training run of one weighting (family order); returns the job id.

    overrides: learning_rate, lora_r, lora_alpha, batch_size, max_length, seed (otherwise the family's
    recipe), evaluate (default True). beta and the evaluation are always the family's.
    """
    family = fam.load_family(root)
    params = check_params(family.spec, {"weights": [float(w) for w in weights], "steps": int(steps),
                                        **{k: v for k, v in overrides.items() if v is not None}})
    adapter = weights_id(params["weights"])
    with _locked(root):
        active = [j for j in fam.list_jobs(root) if j["state"] in ACTIVE and j.get("adapter") == adapter]
        if active or fam.adapter_dir(root, adapter).exists():
            raise ValueError(f"adapter {adapter} already exists or is being trained; pick another weighting")
        job_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        fam.write_status(root, job_id, state="queued", adapter=adapter, params=params,
                         created=time.strftime("%Y-%m-%dT%H:%M:%S"))
    refresh(root)
    return job_id


def _alive(pid: int, job_id: str, pid_start: int | None = None) -> bool:
    child = _children.get(pid)
    if child is not None:
        if child.poll() is None:
            return True
        _children.pop(pid, None)  # reaped: no zombie stays behind
        return False
    if pid_start is not None:  # the process that wrote the status (a CLI run has no job id in its argv)
        return fam.process_start(pid) == pid_start
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return job_id.encode() in cmdline  # guards against a recycled pid


def _process(job: dict, launch: dict | None) -> int | None:
    """The pid of a job's live training process (from its status, else its launch record), or None."""
    if job.get("pid"):
        return job["pid"] if _alive(job["pid"], job["id"], job.get("pid_start")) else None
    pid = (launch or {}).get("pid")
    return pid if pid and _alive(pid, job["id"]) else None


def _launch(root: Path, job: dict) -> bool:
    """Start a queued job's training process; False (and the job failed) when its parameters are refused."""
    try:
        command = train_command(root, job["id"], check_params(fam.read_family(root), job.get("params") or {},
                                                              f"{fam.job_dir(root, job['id']) / 'status.json'}"))
    except fam.FamilyError as e:
        fam.write_status(root, job["id"], state="failed", finished=time.time(), error=f"refused: {e}")
        return False
    log = open(fam.job_dir(root, job["id"]) / "log.txt", "ab")
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True, cwd=str(Path(__file__).resolve().parent.parent),
                            env={**os.environ, "PYTHONUNBUFFERED": "1",  # the log is live
                                 "PYTHONWARNINGS": "ignore", "TRANSFORMERS_VERBOSITY": "error"})  # and not noisy
    log.close()
    _children[proc.pid] = proc
    fam.write_launch(root, job["id"], proc.pid, time.time())
    return True


def refresh(root: Path) -> list[dict]:
    """Mark dead jobs failed, start the next queued job if none runs; returns all jobs."""
    for pid, child in list(_children.items()):  # reap finished children: no <defunct> process stays
        if child.poll() is not None:
            _children.pop(pid, None)
    with _locked(root):
        jobs = fam.list_jobs(root)
        busy, waiting = False, []
        for j in jobs:
            if j["state"] not in ACTIVE or j.get("refused"):
                continue
            launch = fam.read_launch(root, j["id"])
            if j["state"] == "queued" and launch is None:
                waiting.append(j)
                continue
            if _process(j, launch):
                busy = True
                if j["state"] == "queued":  # launched, not yet reporting: shown as starting (not written)
                    j.update(state="running", phase="starting")
                continue
            j.update(fam.read_status(root, j["id"]))  # the process may have finished since we listed
            if j["state"] in ACTIVE:  # it died without saying so; now it cannot write again
                fam.remove_partial(root, j["id"])
                j.update(fam.write_status(root, j["id"], state="failed", finished=time.time(),
                                          error=j.get("error") or "the training process exited without finishing "
                                          "(killed?); see its log"))
        if not busy and waiting:
            if _launch(root, waiting[0]):
                waiting[0].update(state="running", phase="starting")
            else:
                waiting[0].update(fam.read_status(root, waiting[0]["id"]))
        return jobs


def active(jobs: list[dict]) -> bool:
    return any(j["state"] in ACTIVE for j in jobs)


def cancel(root: Path, job_id: str) -> dict:
    """Stop a queued or running job; its partial adapter is removed."""
    with _locked(root):
        status = fam.read_status(root, job_id)
        pid = _process(status, fam.read_launch(root, job_id))
        if pid:
            try:
                os.killpg(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            child = _children.pop(pid, None)
            if child is not None:
                child.wait(timeout=30)
            else:
                deadline = time.time() + 30
                while _alive(pid, job_id) and time.time() < deadline:
                    time.sleep(0.1)
        status = fam.read_status(root, job_id)
        if status["state"] in ACTIVE:
            fam.remove_partial(root, job_id)
            status = fam.write_status(root, job_id, state="cancelled", finished=time.time())
    refresh(root)
    return status


def log_tail(root: Path, job_id: str, lines: int = 40) -> str:
    path = fam.job_dir(root, job_id) / "log.txt"
    if not path.exists():
        return ""
    fam.within(root, path)
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def wait(root: Path, job_id: str, timeout: float = 600, poll: float = 0.5) -> dict:
    """Block until a job leaves queued/running (tests, scripts)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        refresh(root)
        status = fam.read_status(root, job_id)
        if status["state"] not in ACTIVE:
            return status
        time.sleep(poll)
    raise TimeoutError(f"job {job_id} still {status['state']} after {timeout}s")


# ---- a new family trained on a family's votes ---------------------------------------------------------

def votes_family_plan(family: fam.Family, objective: str) -> tuple[list[fam.Objective], dict[str, float]]:
    """(objectives, explicit margin scales) of a family trained on `family`'s votes as the labels of
    `objective`: the target (its labels replaced by the votes) or a new objective (scorer 'votes': the
    utility fitted to them) put first. Every other objective becomes an explicit margin at the scale the
    family used (its explicit margin's, or its Bradley-Terry reward scale). Only built-in scorers are
    passed on; anything else is refused with the CLI to use instead."""
    from .scorers import _FACTORIES
    spec = family.spec
    fam.check_id(objective)
    if objective in spec.objective_names and objective != spec.target:
        raise ValueError(f"{objective!r} is one of this family's objectives but not its target ({spec.target!r}): "
                         "votes label either the target or a new objective (e.g. human)")
    scales = {}
    for o in spec.objectives:
        if o.name == objective:
            continue
        margin = spec.margins.get(o.name, {})
        reward_scales = spec.labels.get("reward_scales") or {}
        scale = margin.get("scale") if margin.get("kind") == "explicit" else reward_scales.get(o.name)
        if o.scorer not in _FACTORIES or not isinstance(scale, (int, float)) or not math.isfinite(scale):
            raise ValueError(f"objective {o.name!r} cannot be an explicit margin here (scorer {o.scorer!r}, scale "
                             f"{scale!r}); train on the votes with `python -m modpo sweep --votes-objective` instead")
        scales[o.name] = float(scale)
    objectives = [fam.Objective(objective, "maximize", "votes")] if objective not in spec.objective_names else []
    return objectives + list(spec.objectives), scales


def votes_family_args(root: Path, new_root: Path, objective: str, steps: int | None,
                      grid_step: float | None = None, weights: list[float] | None = None) -> list[str]:
    """The `sweep` arguments that train a new family on root's votes, over a weight grid (grid_step) or at
    one weighting (weights, in the new family's objective order: votes_family_plan). Values are checked
    or formatted here (ids, built-in scorer names, numbers, paths inside the checkpoints root)."""
    family = fam.load_family(root)
    objectives, scales = votes_family_plan(family, objective)
    recipe = fam.family_recipe(family)
    settings = fam.recorded_eval_settings(family)
    # --flag=value throughout: a value from family.json that starts with "-" stays a value, never an option
    args = ["sweep", f"--family={new_root}", f"--data={fam.votes_file(root)}",
            f"--votes-objective={objective}", f"--model={family.spec.base_model}",
            "--objectives=" + ",".join(f"{o.name}:{o.direction}:{o.scorer}" for o in objectives),
            f"--target={objective}", f"--beta={float(family.spec.beta)!r}"]
    if weights is not None:
        if len(weights) != len(objectives):
            raise ValueError(f"--weights has {len(weights)} values, but a family trained on these votes has "
                             f"{len(objectives)} objectives, in this order: {', '.join(o.name for o in objectives)}")
        args.append("--weights=" + ",".join(repr(float(x)) for x in weights))
    else:
        args.append(f"--grid-step={float(grid_step)!r}")
    if steps is not None:
        args.append(f"--steps={int(steps)}")
    args += [f"--margin={name}=explicit:{scale!r}" for name, scale in scales.items()]
    for key, flag in PARAM_FLAGS.items():
        if isinstance(recipe.get(key), (int, float)) and not isinstance(recipe.get(key), bool):
            value = recipe[key]
            args.append(f"{flag}={float(value)!r}" if isinstance(value, float) else f"{flag}={int(value)}")
    if fam.eval_prompts_path(root).exists():
        args.append(f"--eval-prompts={fam.eval_prompts_path(root)}")
    if isinstance(settings.get("max_new_tokens"), int):
        args.append(f"--max-new-tokens={int(settings['max_new_tokens'])}")
    return args


def start_votes_family(root: Path, name: str, objective: str, steps: int, grid_step: float = 0.5) -> Path:
    """Start training a new family `name` (beside root) on root's votes, in the background; returns its
    folder. Its points appear in the family picker as the sweep writes them; the log is the new
    family's votes-sweep.log."""
    root = Path(root)
    new_root = fam.inside_root(root.parent, fam.check_id(name))
    if new_root.exists():
        raise ValueError(f"{name!r} already exists in the checkpoints folder; pick another name for the new family")
    if not 0 < steps <= 100_000 or grid_step not in (0.25, 0.5, 1.0):
        raise ValueError(f"steps must be 1-100000 and the grid step 0.25, 0.5 or 1, got {steps}, {grid_step}")
    votes, _ = fam.read_votes(root)
    if not any(v["label"] in ("left", "right") for v in votes):
        raise ValueError("no vote says which answer is better yet; vote on the Compare page first")
    command = [sys.executable, "-m", "modpo", *votes_family_args(root, new_root, objective, steps, grid_step)]
    new_root.mkdir(parents=True)
    log = open(new_root / "votes-sweep.log", "ab")
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True, cwd=str(Path(__file__).resolve().parent.parent),
                            env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONWARNINGS": "ignore",
                                 "TRANSFORMERS_VERBOSITY": "error"})
    log.close()
    _children[proc.pid] = proc
    return new_root


def reap() -> None:
    """Collect finished background processes this server started, so none stays <defunct>."""
    for pid, child in list(_children.items()):
        if child.poll() is not None:
            _children.pop(pid, None)
