"""modpo/jobs.py: background training runs queue one at a time, cancel, and die visibly."""
import os
import shutil
import signal
import time

import pytest

from modpo import family as fam
from modpo import jobs

FAST = ["--lora-r", "8", "--lora-alpha", "16", "--max-length", "256", "--no-eval"]


@pytest.fixture
def root(tmp_path, tiny_checkpoints):
    shutil.copytree(tiny_checkpoints / "tiny", tmp_path / "tiny")
    return tmp_path / "tiny"


def wait_for(predicate, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_two_jobs_queue_and_never_overlap(root):
    a = jobs.submit(root, [0.6, 0.4], 3, 5e-3, 0.1, FAST)
    b = jobs.submit(root, [0.4, 0.6], 3, 5e-3, 0.1, FAST)
    states = {j["id"]: j["state"] for j in jobs.refresh(root)}
    assert states[a] == "running" and states[b] == "queued"
    assert jobs.wait(root, a)["state"] == "done"
    assert jobs.wait(root, b)["state"] == "done"
    sa, sb = fam.read_status(root, a), fam.read_status(root, b)
    assert sb["started"] >= sa["finished"], "the second job started before the first finished"
    assert fam.adapter_dir(root, "w-0.60-0.40").exists() and fam.adapter_dir(root, "w-0.40-0.60").exists()
    with pytest.raises(ValueError, match="already exists"):
        jobs.submit(root, [0.6, 0.4], 3, 5e-3, 0.1, FAST)


def test_cancel_stops_the_run_and_leaves_no_adapter(root):
    job = jobs.submit(root, [0.5, 0.5], 5000, 5e-3, 0.1, FAST)
    assert wait_for(lambda: (fam.read_status(root, job).get("step") or 0) >= 1), jobs.log_tail(root, job)
    status = jobs.cancel(root, job)
    assert status["state"] == "cancelled"
    pid = fam.read_status(root, job)["pid"]
    assert wait_for(lambda: not os.path.exists(f"/proc/{pid}") or b"modpo" not in open(f"/proc/{pid}/cmdline", "rb").read(), 30)
    assert not fam.adapter_dir(root, "w-0.50-0.50").exists()
    assert not (fam.job_dir(root, job) / "adapter").exists()


def test_job_killed_from_outside_shows_failed_with_its_log(root):
    job = jobs.submit(root, [0.5, 0.5], 5000, 5e-3, 0.1, FAST)
    assert wait_for(lambda: (fam.read_status(root, job).get("step") or 0) >= 1), jobs.log_tail(root, job)
    os.killpg(fam.read_status(root, job)["pid"], signal.SIGKILL)
    assert wait_for(lambda: jobs.refresh(root) and fam.read_status(root, job)["state"] == "failed", 30)
    status = fam.read_status(root, job)
    assert "exited without finishing" in status["error"]
    assert "loss" in jobs.log_tail(root, job), "the log of the dead run is kept"
    assert not fam.adapter_dir(root, "w-0.50-0.50").exists()
    # the same weighting trains fine afterwards
    again = jobs.submit(root, [0.5, 0.5], 2, 5e-3, 0.1, FAST)
    assert jobs.wait(root, again)["state"] == "done"


@pytest.mark.parametrize("args, message", [
    (([0.0, 1.0], 3, 1e-3, 0.1), "must be > 0"), (([0.5, 0.6], 3, 1e-3, 0.1), "sum to 1"),
    (([0.5, 0.5], 0, 1e-3, 0.1), "steps must be"), (([0.5, 0.5], 3, 2.0, 0.1), "learning rate"),
    (([0.5, 0.5], 3, 1e-3, 0.0), "beta must be"),
])
def test_bad_job_requests(root, args, message):
    with pytest.raises(ValueError, match=message):
        jobs.submit(root, *args)
    assert not [j for j in fam.list_jobs(root) if j.get("command")]
