"""Training jobs as background subprocesses of the CLI: queue, start, poll, cancel.

A job is `python -m modpo train --family F --weights ... --job-id ID` with its output in
jobs/<id>/log.txt; the CLI writes jobs/<id>/status.json as it goes, and this module only reads it,
launches the next queued job when none runs, and notices jobs that died without saying so
(SIGKILL, OOM, a server restart): those are marked failed and their partial adapter removed.
One job runs at a time per family; a lock file serialises the check-and-start across sessions.
"""
from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

from . import family as fam
from .weights import target_first, weights_id

_children: dict[int, subprocess.Popen] = {}  # jobs this process started, so it can reap them


@contextmanager
def _locked(root: Path):
    lock = Path(root) / "jobs" / ".lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def train_command(root: Path, job_id: str, weights: list[float], steps: int, learning_rate: float, beta: float,
                  extra: list[str] | None = None) -> list[str]:
    """The CLI invocation of a job, as an argument list (never a shell string)."""
    return [sys.executable, "-m", "modpo", "train", "--family", str(Path(root).resolve()), "--job-id", job_id,
            "--weights", ",".join(f"{w:g}" for w in weights), "--steps", str(int(steps)),
            "--lr", f"{learning_rate:g}", "--beta", f"{beta:g}", *(extra or [])]


def submit(root: Path, weights: list[float], steps: int, learning_rate: float, beta: float,
           extra: list[str] | None = None) -> str:
    """Queue a training run of one weighting (family order); returns the job id."""
    spec = fam.read_family(root)
    target_first(spec.objective_names, spec.target, weights)  # raises a clear ValueError for bad weights
    if not 1 <= steps <= 100_000:
        raise ValueError(f"steps must be between 1 and 100000, got {steps}")
    if not 0 < learning_rate < 1:
        raise ValueError(f"learning rate must be in (0, 1), got {learning_rate}")
    if not beta > 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    adapter = weights_id(weights)
    with _locked(root):
        active = [j for j in fam.list_jobs(root) if j["state"] in ("queued", "running") and j.get("adapter") == adapter]
        if active or fam.adapter_dir(root, adapter).exists():
            raise ValueError(f"adapter {adapter} already exists or is being trained; pick another weighting")
        job_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        fam.write_status(root, job_id, state="queued", adapter=adapter, weights=list(weights), steps_requested=steps,
                         created=time.strftime("%Y-%m-%dT%H:%M:%S"),
                         command=train_command(root, job_id, weights, steps, learning_rate, beta, extra))
    refresh(root)
    return job_id


def _alive(pid: int, job_id: str) -> bool:
    child = _children.get(pid)
    if child is not None:
        return child.poll() is None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return job_id.encode() in cmdline  # guards against a recycled pid


def refresh(root: Path) -> list[dict]:
    """Mark dead jobs failed, start the next queued job if none runs; returns all jobs."""
    with _locked(root):
        jobs = fam.list_jobs(root)
        for j in jobs:
            if j["state"] == "running" and j.get("pid") and not _alive(j["pid"], j["id"]):
                fam.remove_partial(root, j["id"])
                j.update(fam.write_status(root, j["id"], state="failed", finished=time.time(),
                                          error=j.get("error") or "the training process exited without finishing "
                                          "(killed?); see its log"))
        if not any(j["state"] == "running" for j in jobs):
            queued = [j for j in jobs if j["state"] == "queued"]
            if queued:
                j = queued[0]
                log = open(fam.job_dir(root, j["id"]) / "log.txt", "ab")
                proc = subprocess.Popen(j["command"], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        start_new_session=True, cwd=str(Path(__file__).resolve().parent.parent),
                                        env={**os.environ, "PYTHONUNBUFFERED": "1"})  # the log is live
                log.close()
                _children[proc.pid] = proc
                j.update(fam.write_status(root, j["id"], state="running", pid=proc.pid, started=time.time()))
        return jobs


def cancel(root: Path, job_id: str) -> dict:
    """Stop a queued or running job; its partial adapter is removed."""
    with _locked(root):
        status = fam.read_status(root, job_id)
        if status["state"] == "running" and status.get("pid") and _alive(status["pid"], job_id):
            try:
                os.killpg(status["pid"], signal.SIGTERM)
            except ProcessLookupError:
                pass
            child = _children.pop(status["pid"], None)
            if child is not None:
                child.wait(timeout=30)
        if status["state"] in ("queued", "running"):
            fam.remove_partial(root, job_id)
            status = fam.write_status(root, job_id, state="cancelled", finished=time.time())
    refresh(root)
    return status


def log_tail(root: Path, job_id: str, lines: int = 40) -> str:
    path = fam.job_dir(root, job_id) / "log.txt"
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def wait(root: Path, job_id: str, timeout: float = 600, poll: float = 0.5) -> dict:
    """Block until a job leaves queued/running (tests, scripts)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        refresh(root)
        status = fam.read_status(root, job_id)
        if status["state"] not in ("queued", "running"):
            return status
        time.sleep(poll)
    raise TimeoutError(f"job {job_id} still {status['state']} after {timeout}s")

