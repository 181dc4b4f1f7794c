"""End to end on the tiny model: sweep 3 weightings (implicit margin model), evaluate, front; resume;
a SIGKILLed training run leaves no adapter; --help explains every command."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from peft import PeftModel

from modpo import family as fam
from modpo.cli import main
from modpo.data import write_jsonl

FAST = ["--lora-r", "8", "--lora-alpha", "16", "--lr", "5e-3", "--steps", "6", "--batch-size", "8",
        "--max-length", "256", "--max-new-tokens", "24"]


@pytest.fixture
def family_dir(tmp_path, tiny_prefs):
    write_jsonl(tiny_prefs, tmp_path / "prefs.jsonl")
    (tmp_path / "eval.json").write_text(
        json.dumps(["tell me about cats", "how do i cook rice", "give me advice on sleep"])
    )
    return tmp_path


def sweep_args(d, *extra, weights=("0.75,0.25", "0.5,0.5", "0.25,0.75"), margin="brevity=implicit"):
    return ["sweep", "--family", str(d / "fam"), "--data", str(d / "prefs.jsonl"), "--model", "tiny",
            "--objectives", "positivity:maximize:sentiment,brevity:maximize:brevity", "--target", "positivity",
            "--margin", margin, "--weights", *weights, "--eval-prompts", str(d / "eval.json"), *FAST, *extra]


def small_family(d):
    """One weighting, an explicit brevity margin, two steps: a family to train more into."""
    assert main(sweep_args(d, "--steps", "2", weights=("0.5,0.5",), margin="brevity=explicit:0.01")) == 0


@pytest.mark.slow
def test_sweep_evaluate_front_end_to_end(family_dir, capsys):
    assert main(sweep_args(family_dir)) == 0
    stages = capsys.readouterr().out
    assert "precompute:" in stages and "train w-0.50-0.50:" in stages and "evaluate:" in stages  # stage times
    root = family_dir / "fam"
    family = fam.load_family(root)
    assert not family.errors
    ids = sorted(p.id for p in family.points)
    assert ids == ["base", "dpo-brevity", "w-0.25-0.75", "w-0.50-0.50", "w-0.75-0.25", "w-1.00-0.00"]
    for p in family.points:
        assert p.eval is not None and p.eval["objectives"]["positivity"]["n"] == 3
        if p.kind != "base":
            assert p.meta["steps"] == 6 and len(p.meta["loss_curve"]) == 6 and p.meta["wall_time_s"] > 0
    assert family.point("w-0.50-0.50").weights == {"positivity": 0.5, "brevity": 0.5}
    assert family.point("dpo-brevity").kind == "dpo-margin"
    assert json.loads((root / "family.json").read_text())["margins"]["brevity"]["adapter"] == "dpo-brevity"
    info, pairs = fam.read_pairs(root, "positivity")
    assert len(pairs[0]["margin_chosen_rewards"]) == 1 and info["kept"] == len(pairs)
    # every adapter loads with plain peft on the base model
    from modpo.models import load_base
    base, _ = load_base("tiny")
    PeftModel.from_pretrained(base, str(root / "adapters" / "w-0.50-0.50"))
    assert not any((root / "jobs").glob("*/adapter")), "no partial adapter may stay in jobs/"

    capsys.readouterr()
    assert main(["front", "--family", str(root)]) == 0
    out = capsys.readouterr().out
    assert "hypervolume" in out and "w-0.25-0.75" in out and "on_front" in out
    assert "gains over the base model" in out and "positivity_z_paired" in out  # every answer saved: paired

    # resume: a second sweep trains nothing
    capsys.readouterr()
    assert main(sweep_args(family_dir)) == 0
    out = capsys.readouterr().out
    assert out.count("[skip]") == 5 and "[done]" not in out

    # evaluate --force re-scores the same greedy responses identically
    before = family.point("w-0.75-0.25").eval["objectives"]
    assert main(["evaluate", "--family", str(root), "--force", "--max-new-tokens", "24"]) == 0
    assert fam.load_family(root).point("w-0.75-0.25").eval["objectives"] == before

    # train one more weighting into the family from its stored data
    assert main(["train", "--family", str(root), "--weights", "0.6,0.4", *FAST]) == 0
    assert fam.load_family(root).point("w-0.60-0.40").eval is not None
    # the vertex of the other objective is DPO on its own labels (the target's weight 0 cannot divide)
    assert main(["train", "--family", str(root), "--weights", "0,1", *FAST]) == 0
    vertex = fam.load_family(root).point("w-0.00-1.00")
    assert vertex.meta["objective"] == "brevity" and vertex.eval is not None
    assert fam.read_pairs(root, "brevity")[0]["margins"] == []


@pytest.mark.slow
def test_killed_training_leaves_no_adapter_and_rerun_succeeds(family_dir):
    small_family(family_dir)
    root = family_dir / "fam"
    cmd = [sys.executable, "-m", "modpo", "train", "--family", str(root), "--weights", "0.3,0.7", "--job-id", "job1",
           "--steps", "400", "--lora-r", "8", "--lora-alpha", "16", "--no-eval"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline:
        status = fam.job_dir(root, "job1") / "status.json"
        if status.exists() and fam.read_status(root, "job1").get("step", 0) >= 2:
            break
        time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("training never reported progress")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not fam.adapter_dir(root, "w-0.30-0.70").exists()
    # the process could not say anything: jobs.py judges it by pid
    assert fam.read_status(root, "job1")["state"] == "running"
    cmd[cmd.index("400")] = "3"
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert (fam.adapter_dir(root, "w-0.30-0.70") / "adapter_model.safetensors").exists()
    assert fam.read_status(root, "job1")["state"] == "done"


@pytest.mark.parametrize("args, message", [
    (["train", "--family", "{d}/fam", "--weights", "0.5,0.6"], "must sum to 1"),
    (["train", "--family", "{d}/nothing", "--weights", "0.5,0.5"], "family.json: file is missing"),
    (["sweep", "--family", "{d}/f", "--data", "{d}/prefs.jsonl", "--objectives", "a:maximize:nosuch",
      "--target", "a"], "unknown scorer 'nosuch'"),
    (["sweep", "--family", "{d}/f", "--data", "{d}/prefs.jsonl", "--model", "nosuchmodel",
      "--objectives", "positivity:maximize:sentiment,brevity:maximize:brevity", "--target", "positivity"],
     "unknown model 'nosuchmodel'"),
])
def test_bad_cli_input_gives_clear_error(family_dir, capsys, args, message):
    if args[0] == "train":
        small_family(family_dir)
    capsys.readouterr()
    assert main([a.format(d=family_dir) for a in args]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.slow
def test_help_explains_each_command():
    for command in ("sweep", "train", "evaluate", "front", "generate"):
        out = subprocess.run([sys.executable, "-m", "modpo", command, "--help"], capture_output=True, text=True)
        assert out.returncode == 0 and "--family" in out.stdout
    out = subprocess.run([sys.executable, "-m", "modpo", "train", "--help"], capture_output=True, text=True).stdout
    assert "--beta" in out and "paper" in out


def test_new_points_are_evaluated_with_the_family_settings(tiny_checkpoints):
    """train / evaluate / merge / mix without evaluation flags measure a new point the way the family's
    points were measured (the tiny family was evaluated at 24 tokens; the bare default is 64); a flag given
    still wins, and a family with nothing evaluated gets the defaults."""
    from modpo.cli import build_parser, eval_settings
    root = tiny_checkpoints / "tiny"
    recorded = fam.recorded_eval_settings(fam.load_family(root))
    assert recorded["max_new_tokens"] == 24 and recorded["trim_capped"] is False
    parser = build_parser()
    bare = parser.parse_args(["evaluate", "--family", str(root)])
    family = fam.load_family(root)
    assert eval_settings(bare, family).max_new_tokens == 24
    given = parser.parse_args(["evaluate", "--family", str(root), "--max-new-tokens", "40", "--trim-capped"])
    settings = eval_settings(given, family)
    assert (settings.max_new_tokens, settings.trim_capped) == (40, True)
    assert eval_settings(bare, None).max_new_tokens == 64
