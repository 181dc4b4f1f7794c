"""A family folder is untrusted data: broken files, links out of it, markup in names and an
inconsistent resume each get a warning or a refusal naming the file, and the rest keeps working."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from modpo import family as fam
from modpo.cli import main

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def root(tmp_path, tiny_checkpoints):
    shutil.copytree(tiny_checkpoints / "tiny", tmp_path / "tiny", ignore=shutil.ignore_patterns("jobs"))
    return tmp_path / "tiny"


def edit_json(path: Path, change) -> None:
    obj = json.loads(path.read_text())
    change(obj)
    path.write_text(json.dumps(obj))


def first_objective(obj):
    return next(iter(obj["objectives"]))


# Each case breaks one file of one point; that point is reported (the message names the file), and
# every other point still loads evaluated.
BROKEN_EVAL = [
    ("NaN score", lambda p: p.write_text(p.read_text().replace('"mean": ', '"mean": NaN, "x": ', 1)), "NaN"),
    ("Infinity kl", lambda p: edit_json(p, lambda o: o["kl"].update(mean=1)) or
     p.write_text(re.sub(r'"kl": \{"mean": 1', '"kl": {"mean": Infinity', p.read_text())), "Infinity"),
    ("objective as a number", lambda p: edit_json(p, lambda o: o["objectives"].update(
        {first_objective(o): 0.5})), "should be object"),
    ("zero bytes", lambda p: p.write_bytes(b""), "empty"),
    ("cut short", lambda p: p.write_text(p.read_text()[:40]), "not valid JSON"),
    ("not UTF-8", lambda p: p.write_bytes(b'{"schema_version": 1, "objectives": {"\xff": 1}}'), "line 1, column"),
    ("stderr negative", lambda p: edit_json(p, lambda o: o["objectives"][first_objective(o)].update(stderr=-1)),
     "minimum"),
    ("newer schema", lambda p: edit_json(p, lambda o: o.update(schema_version=99)), "newer than this library"),
    ("old schema", lambda p: edit_json(p, lambda o: o.update(schema_version=0)), "schema_version"),
    ("samples not a list", lambda p: edit_json(p, lambda o: o.update(samples="x")), "samples"),
    ("no-repeat n-gram of one", lambda p: edit_json(p, lambda o: o["settings"].update(no_repeat_ngram=1)),
     "is not one of"),
    ("no-repeat n-gram as a command", lambda p: edit_json(p, lambda o: o["settings"].update(no_repeat_ngram="rm -rf")),
     "is not one of"),
]


@pytest.mark.parametrize("name, breaks, message", BROKEN_EVAL, ids=[c[0] for c in BROKEN_EVAL])
def test_a_broken_eval_json_shows_its_point_unevaluated_and_names_the_file(root, name, breaks, message):
    path = root / "adapters" / "w-0.70-0.30" / "eval.json"
    breaks(path)
    family = fam.load_family(root)
    point = family.point("w-0.70-0.30")
    assert point.eval is None and str(path) in point.eval_problem and "python -m modpo evaluate" in point.eval_problem
    assert any(message in e and str(path) in e for e in family.errors), family.errors
    assert all(p.eval is not None for p in family.points if p.id != "w-0.70-0.30")


BROKEN_META = [
    ("weights as strings", lambda d: edit_json(d / "meta.json", lambda o: o.update(
        weights={k: str(v) for k, v in o["weights"].items()})), "should be number"),
    ("id not the folder", lambda d: edit_json(d / "meta.json", lambda o: o.update(id="w-0.30-0.70")),
     "does not match its folder"),
    ("markup id", lambda d: edit_json(d / "meta.json", lambda o: o.update(id="<a href=x>y</a>")), "does not match"),
    ("unknown kind", lambda d: edit_json(d / "meta.json", lambda o: o.update(kind="shell")), "is not one of"),
    ("weights not on the simplex", lambda d: edit_json(d / "meta.json", lambda o: o.update(
        weights={k: 0.9 for k in o["weights"]})), "do not sum to 1"),
    ("LoRA factor of the wrong rank", lambda d: edit_json(d / "adapter_config.json", lambda o: o.update(r=3)),
     "rank-3 LoRA factor"),
]


@pytest.mark.parametrize("name, breaks, message", BROKEN_META, ids=[c[0] for c in BROKEN_META])
def test_a_broken_adapter_is_skipped_with_a_warning_naming_it(root, name, breaks, message):
    breaks(root / "adapters" / "w-0.70-0.30")
    family = fam.load_family(root)
    assert "w-0.70-0.30" not in [p.id for p in family.points]
    assert any(message in e and "w-0.70-0.30" in e for e in family.errors), family.errors
    assert len(family.points) >= 3


def test_an_adapter_named_base_is_refused_and_the_front_still_works(root, capsys):
    """'base' is the base model's id: an adapter folder of that name (a stranger's zip) is skipped with a
    message, so the front has one base row; and `train --id base` is refused before any training."""
    from modpo.cli import main
    from modpo.front import front_table, gains_over_base
    fake = root / "adapters" / "base"
    shutil.copytree(root / "adapters" / "w-0.70-0.30", fake)
    for name in ("meta.json", "eval.json"):
        edit_json(fake / name, lambda o: o.update(id="base"))
    family = fam.load_family(root)
    assert [p.id for p in family.points].count("base") == 1 and family.point("base").kind == "base"
    assert any("names the base model" in e and str(fake) in e for e in family.errors), family.errors
    table = front_table(family)
    assert (table["id"] == "base").sum() == 1 and len(gains_over_base(family, table)) == len(family.points) - 1
    shutil.rmtree(fake)
    assert main(["train", "--family", str(root), "--weights", "0.5,0.5", "--id", "base", "--steps", "1"]) == 2
    assert "names the base model" in capsys.readouterr().err
    assert not (root / "adapters" / "base").exists()


def test_a_lora_tensor_that_does_not_fit_the_model_is_refused_before_loading(root, tmp_path):
    """Same rank, wrong width: the header check passes, attaching refuses it and leaves the model as it was;
    evaluate skips it with a warning and evaluates the rest."""
    from safetensors.torch import load_file, save_file

    from modpo.models import attach_adapters, load_base
    d = root / "adapters" / "w-0.70-0.30"
    tensors = load_file(str(d / "adapter_model.safetensors"))
    key = next(k for k in tensors if "lora_A" in k)
    tensors[key] = tensors[key][:, :-1].contiguous()
    save_file(tensors, str(d / "adapter_model.safetensors"))
    model, _ = load_base("tiny")
    before = {n for n, _ in model.named_modules()}
    with pytest.raises(ValueError, match="does not fit layer"):
        attach_adapters(model, {"bad": d})
    assert {n for n, _ in model.named_modules()} == before, "a refused adapter altered the model"
    (d / "eval.json").unlink()
    (root / "adapters" / "w-0.30-0.70" / "eval.json").unlink()
    assert main(["evaluate", "--family", str(root)]) == 0
    assert fam.load_family(root).point("w-0.30-0.70").eval is not None


def test_evaluate_repairs_an_unreadable_eval_json_and_front_keeps_working(root, capsys):
    path = root / "adapters" / "w-0.70-0.30" / "eval.json"
    path.write_bytes(b"")
    assert main(["front", "--family", str(root)]) == 0
    out = capsys.readouterr()
    assert "warning:" in out.err and str(path) in out.err and "w-0.30-0.70" in out.out
    assert main(["evaluate", "--family", str(root)]) == 0
    assert "w-0.70-0.30" in capsys.readouterr().out
    assert fam.load_family(root).point("w-0.70-0.30").eval is not None


def test_damaged_stored_pairs_and_margins_are_named(root, capsys):
    arrow = next((root / "data" / "pairs-positivity").glob("*.arrow"))
    arrow.write_bytes(arrow.read_bytes()[:200])
    assert main(["train", "--family", str(root), "--weights", "0.6,0.4", "--steps", "1", "--no-eval"]) == 2
    err = capsys.readouterr().err
    assert "pairs-positivity" in err and "damaged" in err and "re-run" in err
    edit_json(root / "family.json", lambda o: o["margins"]["brevity"].update(kind="telepathy"))
    assert main(["front", "--family", str(root)]) == 2
    err = capsys.readouterr().err
    assert "family.json" in err and "margins.brevity.kind" in err


def test_unknown_keys_survive_a_rewrite(root):
    edit_json(root / "family.json", lambda o: o.update(future_field={"x": 1}))
    edit_json(root / "family.json", lambda o: o["notes"].update(mine="kept"))
    fam.write_family(root, fam.read_family(root))
    obj = json.loads((root / "family.json").read_text())
    assert obj["future_field"] == {"x": 1} and obj["notes"]["mine"] == "kept"


# ---- links out of the family -------------------------------------------------------------------------

def test_an_adapter_folder_linked_outside_is_never_read_or_written(root, tmp_path):
    outside = tmp_path / "outside"
    shutil.copytree(root / "adapters" / "w-0.70-0.30", outside)
    (outside / "eval.json").unlink()
    shutil.rmtree(root / "adapters" / "w-0.70-0.30")
    (root / "adapters" / "w-0.70-0.30").symlink_to(outside)
    family = fam.load_family(root)
    assert "w-0.70-0.30" not in [p.id for p in family.points]
    assert any("outside the family folder" in e for e in family.errors), family.errors
    assert main(["evaluate", "--family", str(root), "--force"]) == 0
    assert not (outside / "eval.json").exists(), "evaluate wrote through a link out of the family"


def test_files_and_data_linked_outside_are_refused(root, tmp_path):
    secret = tmp_path / "secret.json"
    secret.write_text(json.dumps({"schema_version": 1, "objectives": {}}))
    evaluation = root / "adapters" / "w-0.70-0.30" / "eval.json"
    evaluation.unlink()
    evaluation.symlink_to(secret)
    family = fam.load_family(root)
    assert family.point("w-0.70-0.30").eval is None
    assert "outside the family folder" in family.point("w-0.70-0.30").eval_problem
    shutil.move(root / "data", tmp_path / "data")
    (root / "data").symlink_to(tmp_path / "data")
    with pytest.raises(fam.FamilyError, match="outside the family folder"):
        fam.read_eval_prompts(root)
    with pytest.raises(fam.FamilyError, match="outside the family folder"):
        fam.write_data_file(root, "eval_prompts.json", {"prompts": ["x"]})
    (root / "jobs").symlink_to(tmp_path)
    with pytest.raises(fam.FamilyError, match="outside the family folder"):
        fam.write_status(root, "j1", state="queued")


# ---- a family stays consistent with itself -------------------------------------------------------------

def sweep_args(root, data, model="tiny", beta="0.1"):
    return ["sweep", "--family", str(root), "--data", str(data), "--model", model,
            "--objectives", "positivity:maximize:sentiment,brevity:maximize:brevity", "--target", "positivity",
            "--margin", "brevity=explicit:0.02", "--weights", "0.7,0.3", "--beta", beta, "--steps", "1",
            "--lora-r", "8", "--lora-alpha", "16", "--max-length", "256"]


@pytest.mark.parametrize("change, message", [
    ({"model": str(REPO / "modpo" / "assets" / "tiny-llama")}, "base model 'tiny' ->"),
    ({"beta": "0.5"}, "beta 0.1 -> 0.5"),
])
def test_a_resumed_sweep_cannot_change_what_the_family_is(root, capsys, change, message):
    before = (root / "family.json").read_bytes()
    assert main(sweep_args(root, root / "data" / "preferences.jsonl", **change)) == 2
    err = capsys.readouterr().err
    assert message in err and "start a new family" in err
    assert (root / "family.json").read_bytes() == before


def test_train_inherits_the_recipe_and_refuses_incomparable_overrides(root, tmp_path, capsys):
    assert main(["train", "--family", str(root), "--weights", "0.6,0.4", "--beta", "0.5"]) == 2
    assert "this family's beta is 0.1" in capsys.readouterr().err
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"prompts": ["a different prompt"]}))
    prompts_before = (root / "data" / "eval_prompts.json").read_bytes()
    assert main(["train", "--family", str(root), "--weights", "0.6,0.4", "--eval-prompts", str(other)]) == 2
    assert "data/eval_prompts.json" in capsys.readouterr().err
    assert main(["train", "--family", str(root), "--weights", "0.6,0.4", "--max-new-tokens", "9"]) == 2
    assert "max_new_tokens 24 -> 9" in capsys.readouterr().err
    assert (root / "data" / "eval_prompts.json").read_bytes() == prompts_before
    assert main(["train", "--family", str(root), "--weights", "0.6,0.4", "--steps", "1", "--no-eval"]) == 0
    config = fam.load_family(root).point("w-0.60-0.40").meta["config"]
    assert (config["lora_r"], config["lora_alpha"], config["beta"], config["max_length"]) == (8, 16, 0.1, 256)


# ---- interrupts, and the dashboard's address ------------------------------------------------------------

@pytest.mark.slow
def test_ctrl_c_during_train_prints_one_line_and_exits_130(root):
    cmd = [sys.executable, "-m", "modpo", "train", "--family", str(root), "--weights", "0.4,0.6", "--steps", "50000",
           "--no-eval", "--job-id", "ctrlc"]
    # a shell that runs this suite in the background (`cmd &` without job control) starts it with SIGINT
    # ignored, and a child inherits that: Python then installs no KeyboardInterrupt handler and Ctrl-C is
    # lost. A terminal's Ctrl-C reaches a foreground process with SIGINT at its default, as here.
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 90
    while time.time() < deadline:
        status = fam.job_dir(root, "ctrlc") / "status.json"
        if status.exists() and (fam.read_status(root, "ctrlc").get("step") or 0) >= 1:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()  # never leave a 50,000-step training behind
        raise
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err.strip().splitlines()[-1], err
    assert not fam.adapter_dir(root, "w-0.40-0.60").exists()
    assert fam.read_status(root, "ctrlc")["state"] == "failed"


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a socket listening on port (from /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if int(hex_port, 16) == port and state == "0A":
                found.add(address)
    return found


@pytest.mark.slow
@pytest.mark.parametrize("how", ["streamlit run", "python -m modpo dashboard"])
def test_the_dashboard_listens_on_loopback_from_any_directory(tmp_path, how):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = str(REPO / "dashboard" / "app.py")
    cmd = ([sys.executable, "-m", "streamlit", "run", app, "--server.port", str(port), "--server.headless", "true"]
           if how == "streamlit run" else [sys.executable, "-m", "modpo", "dashboard", "--port", str(port)])
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("STREAMLIT_SERVER_ADDRESS", None)
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.time() + 60
        while not listening_addresses(port) and time.time() < deadline:
            time.sleep(0.3)
        addresses = listening_addresses(port)
        assert addresses == {"0100007F"}, f"listening on {addresses} (0100007F is 127.0.0.1 only)"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)


# ---- markup from families and URLs stays text --------------------------------------------------------------

def test_markup_in_names_is_shown_literally_in_the_app(root, tmp_path, monkeypatch):
    from app_helpers import front_page_at, plain
    checkpoints = root.parent
    bad = root / "adapters" / "[md-link](https:evil.example)"
    shutil.copytree(root / "adapters" / "w-0.70-0.30", bad)
    monkeypatch.setenv("MODPO_CHECKPOINTS", str(checkpoints))
    at = front_page_at("[click-me](https://evil.example/a)")
    raw = [str(w.value) for w in at.warning]
    assert raw and all("](" not in w and "<a" not in w and "://" not in w for w in raw), raw  # nothing can link
    text = plain(" ".join(raw))
    assert "[click-me](https://evil.example/a)" in text and "[md-link](https:evil.example)" in text
    assert str(checkpoints) not in text.replace(str(bad), ""), "the server's checkpoints path leaked into a warning"


def test_plotly_labels_and_hovers_escape_html():
    import pandas as pd

    from modpo.plots import front_figure
    evil = '<a href="https://evil.example">x</a>'
    table = pd.DataFrame([{"id": evil, "kind": "merge", "w_a": 0.5, "w_b": 0.5, "a": 1.0, "a_stderr": 0.1, "b": 2.0,
                           "b_stderr": 0.1, "kl": 0.1, "steps": 1, "evaluated": True}])
    fig = front_figure(table, ["a", "b"], {"a": True, "b": True}, "a", "b", title=evil, label_all=True)
    texts = [t for tr in fig.data for t in list(tr.text or []) + list(tr.hovertext or [])]
    assert texts and all("<a " not in t for t in texts) and any("&lt;a href" in t for t in texts)
    assert "<a " not in fig.layout.title.text and list(fig.data[1].customdata) == [evil]


def test_minus_zero_names_the_same_weighting(root, capsys):
    """`1,-0` is the weighting of w-1.00-0.00, not a new adapter w-1.00--0.00."""
    assert main(["train", "--family", str(root), "--weights", "1,-0", "--steps", "1", "--no-eval"]) == 2
    assert "adapter 'w-1.00-0.00' already exists" in capsys.readouterr().err
    assert not list((root / "adapters").glob("*--*"))


def test_a_stranger_dora_adapter_is_refused_at_loading_not_mid_generation(root):
    """peft cannot answer with a DoRA adapter beside others in one batch (it raises during generate): attaching
    refuses it by name, and evaluate skips it and evaluates the rest."""
    from peft import LoraConfig, get_peft_model

    from modpo.models import attach_adapters, load_base
    d = root / "adapters" / "w-0.70-0.30"
    dora = get_peft_model(load_base("tiny")[0], LoraConfig(r=4, target_modules=["q_proj"], use_dora=True))
    dora.save_pretrained(str(d))  # adapter_config.json and adapter_model.safetensors, as a stranger's zip holds them
    model, _ = load_base("tiny")
    with pytest.raises(ValueError, match="DoRA adapter"):
        attach_adapters(model, {"ok": root / "adapters" / "w-0.30-0.70", "bad": d})
    (d / "eval.json").unlink()
    (root / "adapters" / "w-0.30-0.70" / "eval.json").unlink()
    assert main(["evaluate", "--family", str(root)]) == 0
    family = fam.load_family(root)
    assert family.point("w-0.30-0.70").eval is not None and family.point("w-0.70-0.30").eval is None
