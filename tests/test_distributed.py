"""Training runs unchanged under a distributed launcher: 2 CPU processes (gloo DDP) via torchrun."""
import math
import os
import re
import shutil
import subprocess
import sys

import pytest

from modpo import family as fam


@pytest.mark.slow
def test_two_process_ddp_trains_one_adapter(tmp_path, tiny_checkpoints):
    root = tmp_path / "tiny"
    shutil.copytree(tiny_checkpoints / "tiny", root)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "modpo", "train",
           "--family", str(root), "--weights", "0.4,0.6", "--steps", "4", "--lora-r", "8", "--max-length", "256",
           "--no-eval"]
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1"}  # DDP on CPU: the Trainer uses gloo
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, cwd=os.getcwd())
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    log = out.stdout + out.stderr
    assert log.count("trained w-0.40-0.60") == 2, "both ranks must run the command"
    epochs = [float(e) for e in re.findall(r"'epoch': '([0-9.]+)'", log)]
    n_pairs = len(fam.read_pairs(root, "positivity")[1])
    # an epoch is ceil(pairs / (2 ranks x 8)) steps under DDP, ceil(pairs / 8) in one process
    assert epochs and abs(epochs[0] - 1 / math.ceil(n_pairs / 16)) < 1e-3, f"not DDP: epochs per step {epochs[:2]}"
    meta = fam.read_json(fam.adapter_dir(root, "w-0.40-0.60") / "meta.json", "meta")
    assert meta["steps"] == 4
    assert not (fam.job_dir(root, "w-0.40-0.60") / "adapter").exists()
