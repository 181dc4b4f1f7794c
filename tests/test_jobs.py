"""modpo/jobs.py: background training runs queue one at a time, cancel, and die visibly."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from modpo import family as fam
from modpo import jobs

pytestmark = pytest.mark.slow  # real training subprocesses

FAST = {"learning_rate": 5e-3, "lora_r": 8, "lora_alpha": 16, "max_length": 256, "evaluate": False}


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
    a = jobs.submit(root, [0.6, 0.4], 3, **FAST)
    b = jobs.submit(root, [0.4, 0.6], 3, **FAST)
    states = {j["id"]: j["state"] for j in jobs.refresh(root)}
    assert states[a] == "running" and states[b] == "queued"
    assert jobs.wait(root, a)["state"] == "done"
    assert jobs.wait(root, b)["state"] == "done"
    for job in (a, b):  # a finished job's process is reaped: no <defunct> child stays under the app
        pid = fam.read_launch(root, job)["pid"]
        status = Path(f"/proc/{pid}/status")
        assert not status.exists() or "zombie" not in status.read_text(), f"job {job} left a zombie"
    sa, sb = fam.read_status(root, a), fam.read_status(root, b)
    assert fam.read_launch(root, b)["started"] >= sa["finished"], "the second job started before the first finished"
    assert sb["started"] >= sa["finished"]
    assert fam.adapter_dir(root, "w-0.60-0.40").exists() and fam.adapter_dir(root, "w-0.40-0.60").exists()
    with pytest.raises(ValueError, match="already exists"):
        jobs.submit(root, [0.6, 0.4], 3, **FAST)


def test_cancel_stops_the_run_and_leaves_no_adapter(root):
    job = jobs.submit(root, [0.5, 0.5], 5000, **FAST)
    assert wait_for(lambda: (fam.read_status(root, job).get("step") or 0) >= 1), jobs.log_tail(root, job)
    status = jobs.cancel(root, job)
    assert status["state"] == "cancelled"
    pid = fam.read_launch(root, job)["pid"]
    assert wait_for(
        lambda: not os.path.exists(f"/proc/{pid}") or b"modpo" not in open(f"/proc/{pid}/cmdline", "rb").read(), 30
    )
    assert not fam.adapter_dir(root, "w-0.50-0.50").exists()
    assert not (fam.job_dir(root, job) / "adapter").exists()


def test_job_killed_from_outside_shows_failed_with_its_log(root):
    job = jobs.submit(root, [0.5, 0.5], 5000, **FAST)
    assert wait_for(lambda: (fam.read_status(root, job).get("step") or 0) >= 1), jobs.log_tail(root, job)
    os.killpg(fam.read_launch(root, job)["pid"], signal.SIGKILL)
    assert wait_for(lambda: jobs.refresh(root) and fam.read_status(root, job)["state"] == "failed", 30)
    status = fam.read_status(root, job)
    assert "exited without finishing" in status["error"]
    assert "loss" in jobs.log_tail(root, job), "the log of the dead run is kept"
    assert not fam.adapter_dir(root, "w-0.50-0.50").exists()
    # the same weighting trains fine afterwards
    again = jobs.submit(root, [0.5, 0.5], 2, **FAST)
    assert jobs.wait(root, again)["state"] == "done"


@pytest.mark.parametrize("args, message", [
    (([1.5, -0.5], 3), "less than the minimum of 0"),  # (0, 1) is DPO on brevity's labels: valid
    (([0.5, 0.6], 3), "sum to 1"), (([0.5, 0.5], 0), "steps"),
    (([0.5, 0.5], 3, {"learning_rate": 2.0}), "learning_rate"),
    (([0.5, 0.5], 3, {"lora_r": 0}), "lora_r"),
    (([0.5, 0.5], 3, {"beta": 0.5}), "beta"),
])
def test_bad_job_requests(root, args, message):
    before = fam.list_jobs(root)
    with pytest.raises((ValueError, TypeError), match=message):
        jobs.submit(root, *args[:2], **(args[2] if len(args) > 2 else {}))
    assert fam.list_jobs(root) == before


def test_a_job_on_disk_never_becomes_a_command(root, tmp_path):
    """A shared family whose status.json carries a command: opening it, refreshing the queue, or a job
    launched beside it never runs it; the file is refused with a message naming it."""
    pwned = tmp_path / "PWNED"
    evil = fam.job_dir(root, "evil")
    evil.mkdir(parents=True)
    base = {"schema_version": 1, "id": "evil", "state": "queued", "adapter": "w-0.50-0.50",
            "created": "2000-01-01T00:00:00"}
    variants = [
        {**base, "command": ["/bin/sh", "-c", f"id > {pwned}"]},
        {**base, "params": {"weights": [0.5, 0.5], "steps": 2, "argv": ["/bin/sh", "-c", f"id > {pwned}"]}},
        {**base, "params": {"weights": [0.5, 0.5], "steps": "2; id > /tmp/x"}},
        {**base, "params": {"weights": ["0.5", "--trust-remote-code"], "steps": 2}},
    ]
    for variant in variants:
        (evil / "status.json").write_text(json.dumps(variant))
        listed = {j["id"]: j for j in jobs.refresh(root)}
        assert listed["evil"]["state"] == "failed" and listed["evil"].get("refused")
        assert "status.json" in listed["evil"]["error"] and "refused" in listed["evil"]["error"]
        assert fam.read_launch(root, "evil") is None, "a refused job was launched"
    time.sleep(1)
    assert not pwned.exists()
    # a valid job is launched with a command built from its parameters, and the family's recipe
    job = jobs.submit(root, [0.5, 0.5], 2, **FAST)
    argv = jobs.train_command(root, job, fam.read_status(root, job)["params"])
    assert argv[1:4] == ["-m", "modpo", "train"] and "--no-eval" in argv and "--lr=0.005" in argv
    assert jobs.wait(root, job)["state"] == "done"
    assert not pwned.exists()
    config = fam.read_json(fam.adapter_dir(root, "w-0.50-0.50") / "meta.json", "meta")["config"]
    recipe = fam.family_recipe(fam.load_family(root))
    assert (config["lora_r"], config["beta"]) == (8, recipe["beta"])


def test_the_status_says_done_only_after_evaluation(root):
    """The job's state goes queued -> running -> done once, and done only when eval.json exists."""
    job = jobs.submit(root, [0.55, 0.45], 2, learning_rate=5e-3)
    seen = []
    deadline = time.time() + 300
    while time.time() < deadline:
        jobs.refresh(root)
        status = fam.read_status(root, job)
        if not seen or seen[-1] != status["state"]:
            seen.append(status["state"])
        if status["state"] == "done":
            assert (fam.adapter_dir(root, "w-0.55-0.45") / "eval.json").exists(), "done before evaluation"
            break
        time.sleep(0.05)
    assert seen == ["queued", "running", "done"] or seen == ["running", "done"], seen
    final = fam.read_status(root, job)
    assert final["phase"] == "evaluated"
    assert final["eval_total"] > 0 and final["eval_done"] == final["eval_total"], "evaluation progress reported"
    assert fam.load_family(root).point("w-0.55-0.45").eval is not None


def test_two_identical_trains_at_once_agree_with_the_family(root):
    """Two `train` processes for the same weighting: one publishes, the other is refused, and no job
    status says failed for an adapter that was published."""
    cmd = [sys.executable, "-m", "modpo", "train", "--family", str(root), "--weights", "0.45,0.55", "--steps", "6",
           "--no-eval"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [p.communicate(timeout=300) + (p.returncode,) for p in procs]
    codes = sorted(r[2] for r in results)
    assert codes == [0, 2], results
    refused = next(r for r in results if r[2] == 2)[1]
    assert "being trained by another process" in refused or "already exists" in refused
    assert (fam.adapter_dir(root, "w-0.45-0.55") / "adapter_model.safetensors").exists()
    for j in fam.list_jobs(root):
        if j.get("adapter") == "w-0.45-0.55":
            assert j["state"] == "done", j


def test_a_cli_run_is_not_taken_for_dead_by_the_dashboard(root):
    """A `train` started from a shell (no --job-id: nothing in its argv names the job) is alive to the
    dashboard's queue, which must not mark it failed or remove its partial adapter."""
    cmd = [sys.executable, "-m", "modpo", "train", "--family", str(root), "--weights", "0.35,0.65", "--steps", "400",
           "--no-eval"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: (fam.job_dir(root, "w-0.35-0.65") / "status.json").exists()
                        and (fam.read_status(root, "w-0.35-0.65").get("step") or 0) >= 1)
        jobs.refresh(root)
        status = fam.read_status(root, "w-0.35-0.65")
        assert status["state"] == "running" and status["pid_start"] == fam.process_start(proc.pid)
    finally:
        proc.kill()
        proc.wait()
    jobs.refresh(root)
    assert fam.read_status(root, "w-0.35-0.65")["state"] == "failed", "once it is gone, it is marked failed"
