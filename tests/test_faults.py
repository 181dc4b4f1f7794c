"""Faults and load: a sweep SIGKILLed between adapters resumes; five sessions generating at once share
one model and are all answered, one generate call at a time."""
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from modpo import family as fam
from modpo.data import write_jsonl

WEIGHTS = ("0.75,0.25", "0.5,0.5", "0.25,0.75")


@pytest.mark.slow
def test_sweep_killed_between_adapters_resumes(tmp_path, tiny_prefs):
    write_jsonl(tiny_prefs, tmp_path / "prefs.jsonl")
    (tmp_path / "eval.json").write_text(json.dumps(["tell me about cats", "how do i cook rice"]))
    root = tmp_path / "fam"
    cmd = [sys.executable, "-m", "modpo", "sweep", "--family", str(root), "--data", str(tmp_path / "prefs.jsonl"),
           "--model", "tiny", "--objectives", "positivity:maximize:sentiment,brevity:maximize:brevity",
           "--target", "positivity", "--margin", "brevity=explicit:0.01", "--weights", *WEIGHTS,
           "--lora-r", "8", "--lora-alpha", "16", "--steps", "30", "--max-length", "256", "--max-new-tokens", "16",
           "--eval-prompts", str(tmp_path / "eval.json")]
    log = (tmp_path / "first.log").open("w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 600
        first = None
        while time.time() < deadline and proc.poll() is None:
            done = sorted(p.name for p in (root / "adapters").glob("*")) if (root / "adapters").exists() else []
            if len(done) >= 2:  # the DPO endpoint and one weighting are published; the next one is training
                first = done
                break
            time.sleep(0.1)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert first, f"the sweep never published two adapters:\n{(tmp_path / 'first.log').read_text()[-2000:]}"
    published = {name: (root / "adapters" / name / "adapter_model.safetensors").stat().st_mtime_ns for name in first}
    family = fam.load_family(root)
    assert not family.errors, family.errors  # nothing half-written was published
    assert {p.id for p in family.points if p.kind != "base"} == set(first)

    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    for name in first:
        assert f"[skip] {name} exists" in out.stdout
        assert (root / "adapters" / name / "adapter_model.safetensors").stat().st_mtime_ns == published[name]
    assert "precompute:" not in out.stdout, "the stored precompute is reused, so it is neither rerun nor timed"
    family = fam.load_family(root)
    assert not family.errors
    ids = {p.id for p in family.points if p.kind != "base"}
    assert ids == {"w-1.00-0.00", "w-0.75-0.25", "w-0.50-0.50", "w-0.25-0.75"}
    assert all(p.eval is not None for p in family.points)
    assert not list(fam.job_dir(root, "x").parent.glob("*/adapter")), "no partial adapter left in jobs/"


def test_five_sessions_generating_at_once_share_one_model_and_all_get_answers(tiny_checkpoints, monkeypatch):
    from dashboard import common
    from modpo import evaluate as answering
    from modpo.config import EvalSettings

    root = tiny_checkpoints / "tiny"
    family = fam.load_family(root)
    points = [family.point(i) for i in ("base", "w-0.70-0.30", "w-0.30-0.70")]
    loads, active, overlap = [], [0], [0]
    real_generate = answering.generate

    def counting_generate(*args, **kwargs):
        active[0] += 1
        overlap[0] = max(overlap[0], active[0])
        try:
            time.sleep(0.05)  # widen the window in which a second call could sneak in
            return real_generate(*args, **kwargs)
        finally:
            active[0] -= 1

    monkeypatch.setattr(answering, "generate", counting_generate)
    common.model_service.clear()
    settings = EvalSettings(max_new_tokens=12)
    prompts = [f"session {i}: tell me about tea" for i in range(5)]
    results, errors = {}, []

    def session(i):
        try:
            service = common.model_service(str(root), family.spec.base_model)
            loads.append(id(service))
            service.answer(family, points, prompts[i], settings)
            results[i] = {p.id: service.responses[(p.id, prompts[i], settings)]["text"] for p in points}
        except Exception as e:  # pragma: no cover - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=session, args=(i,)) for i in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    assert len(set(loads)) == 1, "every session must share one model service (one base model in memory)"
    assert sorted(results) == list(range(5))
    assert all(set(r) == {p.id for p in points} for r in results.values())
    service = common.model_service(str(root), family.spec.base_model)
    assert service.answer(family, points, prompts[0], settings) == 0, "answers are cached"
    assert overlap[0] == 1, "generation must be serialised: one batched call at a time"
