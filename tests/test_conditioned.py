"""modpo/conditioned.py: one SVD-LoRA adapter conditioned on the weighting (Panacea), trained with the exact
MODPO loss over the simplex, exported exactly as a plain peft LoRA per weighting."""
import json

import pytest
import torch

from modpo import conditioned as cd
from modpo import family as fam
from modpo.loss import modpo_loss


def batch(n=6, k=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    t = [torch.randn(n, generator=g) - 20 for _ in range(4)]
    return (*t, torch.randn(n, k - 1, generator=g), torch.randn(n, k - 1, generator=g))


def test_the_per_example_loss_is_the_loss_at_each_examples_weighting():
    args = batch()
    w = torch.tensor([[0.5, 0.3, 0.2]] * 6, dtype=torch.float64)
    torch.testing.assert_close(modpo_loss(*args, w, 0.5), modpo_loss(*args, [0.5, 0.3, 0.2], 0.5))
    rows = cd.sample_weightings(6, 3, 0.05, torch.Generator().manual_seed(1)).double()
    per_row = torch.stack([modpo_loss(*[a[i:i + 1] for a in args], rows[i].tolist(), 0.5)[0] for i in range(6)])
    torch.testing.assert_close(modpo_loss(*args, rows, 0.5), per_row)
    probs = torch.rand(6, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(modpo_loss(*args, w, 0.5, probs), modpo_loss(*args, [0.5, 0.3, 0.2], 0.5, probs))
    bad = rows.clone()
    bad[0] = torch.tensor([0.0, 0.5, 0.5])
    with pytest.raises(ValueError, match="column 0"):
        modpo_loss(*args, bad, 0.5)


def test_sampled_weightings_cover_the_simplex_with_the_target_at_least_eps():
    w = cd.sample_weightings(4000, 3, 0.05, torch.Generator().manual_seed(0))
    torch.testing.assert_close(w.sum(-1), torch.ones(4000))
    assert (w >= 0).all() and (w[:, 0] >= 0.05 - 1e-7).all()
    assert w[:, 1].max() > 0.9 and w[:, 2].max() > 0.9 and w[:, 0].max() > 0.9, "every end is reached"
    assert abs(float(w[:, 1].mean()) - 0.95 / 3) < 0.02, "Dirichlet(1): uniform over the simplex"


def randomized(model, ccfg, seed=0):
    """The model with a conditioned adapter whose every tensor is random (so w matters everywhere)."""
    cd.add_conditioned_lora(model, ccfg)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, layer in cd.conditioned_layers(model):
            for p in (layer.lora_B, layer.free, layer.scale):
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    return model


@pytest.mark.parametrize("per_objective", [1, 2])
def test_an_exported_weighting_is_a_plain_peft_lora_with_the_same_logits(tmp_path, per_objective):
    """Exact export, with one singular value per objective carrying its weight (Panacea) or two."""
    from peft import PeftModel

    from modpo.models import load_base
    ccfg = cd.ConditionedConfig(r=8, alpha=16, n_objectives=3, per_objective=per_objective)
    model, tok = load_base("tiny")
    model = randomized(model, ccfg)
    ids = tok(["tell me about cats", "how do i cook rice"], return_tensors="pt", padding=True)
    for w in ([0.6, 0.3, 0.1], [0.05, 0.0, 0.95]):
        cd.set_weighting(model, w)
        with torch.no_grad():
            conditioned = model(**ids).logits
        folder = tmp_path / f"w-{w[0]}"
        cd.write_lora(folder, cd.export_lora(cd.conditioned_state(model), w), ccfg, "tiny")
        # the test's own export in tmp_path (safetensors): plain peft loading is what the issue asks
        # a folder this test just exported (safetensors only): loading it with plain peft is what is checked
        plain = PeftModel.from_pretrained(load_base("tiny")[0], str(folder)).eval()
        with torch.no_grad():
            exported = plain(**ids).logits
        torch.testing.assert_close(exported, conditioned, atol=1e-4, rtol=0)
    base = load_base("tiny")[0]
    with torch.no_grad():
        assert (base(**ids).logits - conditioned).abs().max() > 1e-2, "the adapter changes the outputs"
    cd.set_weighting(model, torch.tensor([[0.6, 0.3, 0.1], [0.05, 0.0, 0.95]]))
    with torch.no_grad():
        per_row = model(**ids).logits
    torch.testing.assert_close(per_row[1], conditioned[1], atol=1e-5, rtol=0)  # row 1 at its own weighting
    with pytest.raises(FileExistsError):
        cd.write_lora(folder, cd.export_lora(cd.conditioned_state(model), [1, 0, 0]), ccfg, "tiny")


def test_a_saved_state_loads_back_and_a_wrong_one_is_refused():
    from modpo.models import load_base
    ccfg = cd.ConditionedConfig(r=4, alpha=8, n_objectives=2)
    model = randomized(load_base("tiny")[0], ccfg)
    state = cd.conditioned_state(model)
    other = load_base("tiny")[0]
    cd.add_conditioned_lora(other, ccfg)
    cd.load_conditioned_state(other, state)
    assert all(torch.equal(v, cd.conditioned_state(other)[k]) for k, v in state.items())
    with pytest.raises(ValueError, match="does not fit"):
        cd.load_conditioned_state(other, {k: v for k, v in list(state.items())[1:]})
    with pytest.raises(ValueError, match="must exceed"):
        cd.ConditionedConfig(r=2, n_objectives=2)
    with pytest.raises(ValueError, match="must exceed"):
        cd.ConditionedConfig(r=6, n_objectives=3, per_objective=2)


def test_each_objective_weighs_per_objective_singular_values():
    """s(w) = [free, lambda * w_1 (m times), ..., lambda * w_n (m times)]: r - n m free values."""
    from modpo.models import load_base
    model = load_base("tiny")[0]
    cd.add_conditioned_lora(model, cd.ConditionedConfig(r=8, alpha=16, n_objectives=2, per_objective=3))
    layer = cd.conditioned_layers(model)[0][1]
    with torch.no_grad():
        layer.free.copy_(torch.tensor([7.0, 8.0]))
        layer.scale.fill_(2.0)
    torch.testing.assert_close(layer.singular_values(torch.tensor([0.25, 0.75])),
                               torch.tensor([7.0, 8.0, 0.5, 0.5, 0.5, 1.5, 1.5, 1.5]))


def test_training_uses_the_weighting_it_is_given(tiny_checkpoints, tmp_path):
    """On the tiny family's stored pairs (positivity labels, brevity as an explicit margin), trained over the
    simplex: at each end, the adapter conditioned on that end's weighting fits that weighting's MODPO loss
    better than when conditioned on the other end; and the target end keeps more of the labels' choice."""
    from modpo.config import TrainConfig
    from modpo.data import PairCollator
    from modpo.loss import model_sequence_logps
    from modpo.models import load_base
    root = tiny_checkpoints / "tiny"
    spec = fam.read_family(root)
    _, pairs = fam.read_pairs(root, spec.target)
    model, tok = load_base("tiny")
    cfg = TrainConfig(beta=spec.beta, learning_rate=5e-3, max_steps=40, batch_size=8, seed=0)
    record = cd.train_conditioned(model, pairs, cfg, cd.ConditionedConfig(r=8, alpha=16, n_objectives=2),
                                  tmp_path / "work")
    assert record["steps"] == 40 and record["loss_curve"][-1][1] < record["loss_curve"][0][1]
    examples = [pairs[i] for i in range(len(pairs))]
    inputs = PairCollator(tok.pad_token_id)(examples)
    n = len(examples)

    def logratio_margin(condition):
        cd.set_weighting(model, condition)
        with torch.no_grad():
            logps = model_sequence_logps(model, inputs["input_ids"], inputs["attention_mask"], inputs["labels"])
        return logps[:n], logps[n:]

    def loss(condition, w):
        chosen, rejected = logratio_margin(condition)
        return float(modpo_loss(chosen, rejected, inputs["reference_chosen_logps"],
                                inputs["reference_rejected_logps"], inputs["margin_chosen_rewards"],
                                inputs["margin_rejected_rewards"], w, spec.beta).mean())

    target_end, brevity_end = [0.9, 0.1], [0.1, 0.9]
    assert loss(target_end, target_end) < loss(brevity_end, target_end)
    assert loss(brevity_end, brevity_end) < loss(target_end, brevity_end)

    def label_margin(condition):
        chosen, rejected = logratio_margin(condition)
        chosen, rejected = chosen - inputs["reference_chosen_logps"], rejected - inputs["reference_rejected_logps"]
        return float((chosen - rejected).mean())
    assert label_margin([1.0, 0.0]) > label_margin([0.05, 0.95]), "more target weight, more of the labels' choice"


def test_cli_trains_saves_exports_and_refuses_a_corrupt_one(tiny_checkpoints, tmp_path, capsys):
    import shutil

    from peft import PeftModel

    from modpo.cli import main
    from modpo.models import load_base
    from modpo.weights import target_first
    root = tmp_path / "tiny"
    shutil.copytree(tiny_checkpoints / "tiny", root)
    assert main(["train-conditioned", "--family", str(root), "--steps", "3", "--lora-r", "4", "--lora-alpha", "8",
                 "--no-eval"]) == 0
    tensors, meta = fam.read_conditioned(root, "conditioned")
    assert meta["kind"] == "conditioned" and meta["steps"] == 3 and meta["conditioning"]["r"] == 4
    assert meta["objectives"] == ["positivity", "brevity"] and fam.list_conditioned(root) == ["conditioned"]
    assert not list((root / "conditioned").glob(".*")), "no temp folder left behind"
    assert main(["train-conditioned", "--family", str(root), "--steps", "3", "--no-eval"]) == 0
    assert "already exists; kept" in capsys.readouterr().out
    out = tmp_path / "export"
    assert main(["export", "--family", str(root), "--weights", "0.7,0.3", "--out", str(out)]) == 0
    assert main(["export", "--family", str(root), "--weights", "0.7,0.3", "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err, "an existing folder is a one-line error, not a traceback"
    assert main(["export", "--family", str(root), "--weights", "0.01,0.99", "--out", str(tmp_path / "low")]) == 2
    assert "least this conditioned adapter was trained with" in capsys.readouterr().err
    assert not (tmp_path / "low").exists()
    model, tok = load_base("tiny")
    ccfg = cd.ConditionedConfig(r=4, alpha=8, n_objectives=2)
    cd.add_conditioned_lora(model, ccfg)
    cd.load_conditioned_state(model, tensors)
    cd.set_weighting(model, target_first(["positivity", "brevity"], "positivity", [0.7, 0.3]))
    ids = tok(["tell me about tea"], return_tensors="pt")
    # the test's own export in tmp_path (safetensors): plain peft loading is what the issue asks
    # a folder this test just exported (safetensors only): loading it with plain peft is what is checked
    plain = PeftModel.from_pretrained(load_base("tiny")[0], str(out)).eval()
    with torch.no_grad():
        torch.testing.assert_close(plain(**ids).logits, model(**ids).logits, atol=1e-4, rtol=0)
    weights = root / "conditioned" / "conditioned" / "conditioned.safetensors"
    weights.write_bytes(weights.read_bytes()[:200])
    with pytest.raises(fam.FamilyError, match="corrupt or truncated"):
        fam.read_conditioned(root, "conditioned")
    assert main(["export", "--family", str(root), "--weights", "0.5,0.5", "--out", str(tmp_path / "x")]) == 2
    assert "corrupt or truncated" in capsys.readouterr().err
    assert len(fam.load_family(root).points) == 4 + 13, "the rest of the family still loads (and its exported points)"
    shutil.rmtree(root / "conditioned")
    assert main(["export", "--family", str(root), "--weights", "0.5,0.5", "--out", str(tmp_path / "y")]) == 2
    assert "train-conditioned" in capsys.readouterr().err


def test_the_conditioned_points_are_evaluated_drawn_and_audited(tiny_checkpoints, tmp_path, capsys):
    import shutil

    from modpo.cli import main
    from modpo.front import conditioned_audit, conditioned_hypervolume_interval, front_table
    from modpo.plots import front_figure
    root = tmp_path / "tiny"
    shutil.copytree(tiny_checkpoints / "tiny", root)
    assert main(["train-conditioned", "--family", str(root), "--steps", "4", "--lora-r", "4", "--lora-alpha", "8"]) == 0
    family = fam.load_family(root)
    points = [p for p in family.points if p.kind == "conditioned"]
    weights = sorted(p.weights["positivity"] for p in points)
    assert len(points) == 11 + 2, "11 grid points, and the trained 0.70-0.30 and 0.30-0.70 (1.00-0.00 is on the grid)"
    assert all(p.eval for p in points) and weights[0] >= 0.05 and weights[-1] == 1.0
    table = front_table(family)
    rows, summary = conditioned_audit(family, table)
    assert list(rows["exact"]) == ["w-0.30-0.70", "w-0.70-0.30", "w-1.00-0.00"]
    assert rows["positivity_se_apart"].notna().all() and summary["hypervolume_exact"] > 0
    assert 0 < summary["ratio"] and summary["conditioned_points"] == 13
    fig = front_figure(table, ["positivity", "brevity"], {"positivity": True, "brevity": True}, "brevity", "positivity")
    assert any(t.name == "conditioned adapter's curve" and len(t.x) == 13 for t in fig.data)
    assert main(["front", "--family", str(root)]) == 0
    out = capsys.readouterr().out
    assert "the conditioned adapter against the exact adapters" in out and "ratio" in out
    interval = conditioned_hypervolume_interval(family, table)  # every answer saved: the ratio resampled
    assert interval["prompts"] == 6 and interval["draws"] == 300
    assert interval["low"] <= interval["median"] <= interval["high"]
    resampled = "the ratio resampled over the 6 held-out prompts (300 bootstrap draws)"
    assert f"{resampled}: median {interval['median']:.3f}" in out
    stranger = json.loads((points[0].path / "eval.json").read_text())  # scores at the float limit: no interval,
    for sample in stranger["samples"]:                                   # never a crash
        sample["scores"]["positivity"] = 1.7e308
    (points[0].path / "eval.json").write_text(json.dumps(stranger))
    family = fam.load_family(root)
    assert not family.errors and conditioned_hypervolume_interval(family, front_table(family)) is None
    assert main(["front", "--family", str(root)]) == 0 and resampled not in capsys.readouterr().out
    # the family stores one adapter for the whole front: its points hold meta and eval, and load its export
    from modpo.evaluate import adapters_of
    assert not any((p.path / "adapter_model.safetensors").exists() for p in points)
    folders = adapters_of(family, points[:2])
    assert all((f / "adapter_model.safetensors").is_file() and root not in f.parents for f in folders.values())
    shutil.rmtree(root / "conditioned")
    family = fam.load_family(root)
    assert [p.kind for p in family.points if p.kind != "base"] == ["modpo"] * 3, "the exact points still load"
    assert len(family.errors) == 13 and all("train-conditioned" in e for e in family.errors)


def test_any_weighting_columns_on_the_compare_page(checkpoints):
    """The Compare page's Any-weighting slider shows the conditioned adapter at the picked w as a column that
    generates in the same batch as the others; Pin keeps a weighting while the slider moves on; a corrupt
    conditioned adapter is a message and the page still works."""
    from app_helpers import plain
    from test_dashboard import compare_script, run

    from dashboard.any_weighting import OPEN_KEY
    from modpo.cli import main
    root = checkpoints / "tiny"
    assert main(["train-conditioned", "--family", str(root), "--steps", "2", "--lora-r", "4", "--lora-alpha", "8",
                 "--no-eval"]) == 0
    at = run(compare_script, selection={"tiny": {"selected": ["w-0.70-0.30"], "seen": {}}})
    headers = [plain(m.value) for m in at.markdown]
    assert not any("conditioned-any" in h for h in headers), "a closed panel adds no column"
    at.session_state[OPEN_KEY] = True  # the user opens the panel
    at.slider(key="any_w_0").set_value(0.8).run()
    headers = [plain(m.value) for m in at.markdown]
    assert "**conditioned-any-0.80-0.20**" in headers
    at.button(key="any_pin").click().run()
    at.slider(key="any_w_0").set_value(0.3).run()
    headers = [plain(m.value) for m in at.markdown]
    assert "**conditioned-any-0.80-0.20**" in headers and "**conditioned-any-0.30-0.70**" in headers
    at.session_state[OPEN_KEY] = False  # closed again: the pin stays, the live weighting goes
    at.run()
    headers = [plain(m.value) for m in at.markdown]
    assert "**conditioned-any-0.80-0.20**" in headers and "**conditioned-any-0.30-0.70**" not in headers
    at.session_state[OPEN_KEY] = True
    at.run()
    at.button(key="generate").click().run()
    assert not at.exception
    service = at.session_state["_service_" + str(root)]
    answered = {pid for (pid, _, _) in service.responses}
    assert {"conditioned-any-0.80-0.20", "conditioned-any-0.30-0.70", "w-0.70-0.30", "base"} <= answered
    assert len(at.text) == 4, "every column shows its answer"
    at.slider(key="any_w_0").set_value(0.55).run()  # with the model loaded, a new weighting answers at once
    assert not at.exception
    answered = {pid for (pid, _, _) in service.responses}
    assert "conditioned-any-0.55-0.45" in answered and len(at.text) == 4
    weights = root / "conditioned" / "conditioned" / "conditioned.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    at = run(compare_script, selection={"tiny": {"selected": ["w-0.70-0.30"], "seen": {}}})
    assert any("cannot be used" in plain(e.value) for e in at.error)
    assert [plain(m.value) for m in at.markdown][:2] == ["**base**", "**w-0.70-0.30**"]


def test_a_strangers_conditioned_adapter_of_the_wrong_shape_is_refused(tiny_checkpoints, tmp_path):
    """A conditioned.safetensors that parses but whose tensors disagree with meta.json (a stranger's zip)
    is refused by name before any tensor is multiplied, and the family still loads."""
    import shutil

    from safetensors.torch import save_file

    from modpo.cli import main
    root = tmp_path / "tiny"
    shutil.copytree(tiny_checkpoints / "tiny", root)
    assert main(["train-conditioned", "--family", str(root), "--steps", "1", "--lora-r", "4", "--lora-alpha", "8",
                 "--no-eval"]) == 0
    tensors, meta = fam.read_conditioned(root, "conditioned")
    assert meta["conditioning"]["per_objective"] == 1
    meta_file = root / "conditioned" / "conditioned" / "meta.json"
    saved = meta_file.read_text()
    for per_objective in (2, 3):  # more weight-carrying values than the tensors hold; 3 x 2 > rank 4
        meta_file.write_text(saved.replace('"per_objective": 1', f'"per_objective": {per_objective}'))
        with pytest.raises(fam.FamilyError, match=f"2 objectives x {per_objective}"):
            fam.read_conditioned(root, "conditioned")
    meta_file.write_text(saved)
    layer = next(k for k in tensors if k.endswith(".lora_B"))
    tensors[layer] = torch.zeros(tensors[layer].shape[0], 7)  # rank 7, not the 4 meta.json says
    save_file(tensors, str(root / "conditioned" / "conditioned" / "conditioned.safetensors"))
    with pytest.raises(fam.FamilyError, match="not of rank 4"):
        fam.read_conditioned(root, "conditioned")
    tensors.pop(layer)
    save_file(tensors, str(root / "conditioned" / "conditioned" / "conditioned.safetensors"))
    with pytest.raises(fam.FamilyError, match="missing"):
        fam.read_conditioned(root, "conditioned")
    assert len(fam.load_family(root).points) > 4


def test_a_strangers_conditioned_point_cannot_lead_out_of_the_family(tiny_checkpoints, tmp_path):
    """A conditioned point stores no weights and names its conditioned adapter: in a stranger's family that
    name, or the adapter's file, may try to lead elsewhere. A link out of the family, a name that is not an
    id, or an adapter that is not there is refused with the file named, and the rest of the family loads."""
    import json
    import shutil

    from modpo.cli import main
    root = tmp_path / "tiny"
    shutil.copytree(tiny_checkpoints / "tiny", root)
    assert main(["train-conditioned", "--family", str(root), "--steps", "1", "--lora-r", "4", "--lora-alpha", "8",
                 "--no-eval"]) == 0
    point = next((root / "adapters").glob("conditioned-*"))
    meta = json.loads((point / "meta.json").read_text())
    outside = tmp_path / "elsewhere"
    shutil.copytree(root / "conditioned" / "conditioned", outside)
    for name, prepare, says in (
            ("../../elsewhere", lambda: None, f"{point.name}/meta.json"),
            ("linked", lambda: (root / "conditioned" / "linked").symlink_to(outside), "conditioned/linked: is a link"),
            ("file-linked", lambda: ((root / "conditioned" / "file-linked").mkdir(),
                                     (root / "conditioned" / "file-linked" / "conditioned.safetensors").symlink_to(
                                         outside / "conditioned.safetensors")), "file-linked/conditioned.safetensors"),
            ("absent", lambda: None, f"{point.name}: its conditioned adapter")):
        prepare()
        (point / "meta.json").write_text(json.dumps({**meta, "conditioned": name}))
        family = fam.load_family(root)
        assert point.name not in {p.id for p in family.points}, name
        assert any(says in e for e in family.errors), (name, family.errors)
        assert {"w-0.30-0.70", "w-0.70-0.30"} <= {p.id for p in family.points}, "the rest still loads"


def test_the_embedding_conditioning_starts_at_the_base_reads_w_per_row_and_refuses_export():
    """The comparator (method 'embedding'): E w added to every input token, zero at the start; one w per row
    works as for the SVD method; its state round-trips; it has no plain-LoRA form, said by name."""
    from modpo.models import load_base
    ccfg = cd.ConditionedConfig(r=4, alpha=8, n_objectives=2, method="embedding")
    base, tok = load_base("tiny")
    model = load_base("tiny")[0]
    cd.add_conditioned_lora(model, ccfg)
    assert all(layer.free.shape == (4,) for _, layer in cd.conditioned_layers(model)), "every singular value free"
    ids = tok(["tell me about cats", "tell me about rice"], return_tensors="pt", padding=True)
    cd.set_weighting(model, [0.3, 0.7])
    with torch.no_grad():
        torch.testing.assert_close(model(**ids).logits, base(**ids).logits, atol=1e-5, rtol=0)
        model.modpo_weight_embedding.weight.copy_(torch.randn(model.modpo_weight_embedding.weight.shape) * 0.5)
        at = {tuple(w): (cd.set_weighting(model, w), model(**ids).logits)[1] for w in ([0.9, 0.1], [0.1, 0.9])}
        assert (at[(0.9, 0.1)] - at[(0.1, 0.9)]).abs().max() > 1e-2, "the weighting changes the outputs"
        cd.set_weighting(model, torch.tensor([[0.9, 0.1], [0.1, 0.9]]))
        per_row = model(**ids).logits
    torch.testing.assert_close(per_row[0], at[(0.9, 0.1)][0], atol=1e-5, rtol=0)
    torch.testing.assert_close(per_row[1], at[(0.1, 0.9)][1], atol=1e-5, rtol=0)
    state = cd.conditioned_state(model)
    other = load_base("tiny")[0]
    cd.add_conditioned_lora(other, ccfg)
    cd.load_conditioned_state(other, state)
    assert torch.equal(other.modpo_weight_embedding.weight, model.modpo_weight_embedding.weight)
    with pytest.raises(ValueError, match="no plain LoRA can hold"):
        cd.export_lora(state, [0.5, 0.5])
    with pytest.raises(ValueError, match="unknown conditioning"):
        cd.ConditionedConfig(method="prompt")


def test_the_triangle_picks_a_weighting_of_three_objectives_on_the_shipped_demo(monkeypatch):
    """With three objectives the Any-weighting picker is a triangle: it starts at the centre, a click on a
    dot makes that weighting the column (exported from the demo's conditioned adapter), and an event that
    names no dot of the grid (another trace, a bool, out of range) changes nothing."""
    from pathlib import Path

    from app_helpers import plain
    from test_dashboard import compare_script, run

    from dashboard.any_weighting import OPEN_KEY, TRIANGLE_STEP, any_id
    from modpo.pareto import weight_grid
    demo = Path(__file__).resolve().parent.parent / "checkpoints" / "demo"
    monkeypatch.setenv("MODPO_CHECKPOINTS", str(demo.parent))
    choices = [list(w) for w in weight_grid(3, TRIANGLE_STEP, interior=False) if w[0] >= 0.05 - 1e-9]

    def columns(at):
        return [plain(m.value).strip("*") for m in at.markdown if plain(m.value).startswith("**")]

    at = run(compare_script, selection={"demo": {"selected": ["w-1.00-0.00-0.00"], "seen": {}}})
    start = at.session_state["any_w3"]
    assert start in choices and max(abs(w - 1 / 3) for w in start) <= 0.05, "it starts at the centre"
    assert columns(at) == ["base", "w-1.00-0.00-0.00"], "the panel is closed: no column at its weighting"
    at.session_state[OPEN_KEY] = True
    at.run()
    assert any_id("conditioned", start) in columns(at)
    pick = choices.index([0.7, 0.1, 0.2])
    for bad in ({"customdata": pick, "curve_number": 2}, {"customdata": True, "curve_number": 1},
                {"customdata": len(choices), "curve_number": 1}):
        at.session_state["_inject_any_triangle"] = {"selection": {"points": [bad]}}
        at.run()
        assert at.session_state["any_w3"] == start, bad
    at.session_state["_inject_any_triangle"] = {"selection": {"points": [{"customdata": pick, "curve_number": 1}]}}
    at.run()
    assert not at.exception
    assert at.session_state["any_w3"] == [0.7, 0.1, 0.2]
    assert any_id("conditioned", [0.7, 0.1, 0.2]) in columns(at) and any_id("conditioned", start) not in columns(at)
    assert any("relevance 0.70, sentiment 0.10, brevity 0.20" in plain(c.value) for c in at.caption)


def test_weightings_drawn_for_a_labels_region_are_uniform_on_it():
    g = torch.Generator().manual_seed(0)
    for k in range(3):
        w = cd.sample_in_regions(torch.full((60_000,), k), 3, g)
        torch.testing.assert_close(w.sum(-1), torch.ones(60_000))
        assert (w.argmax(-1) == k).all(), "the labels' objective holds the largest weight"
        # uniform on {w_k >= w_j}: E[w_k] = E[max of 3 uniform spacings] = (1 + 1/2 + 1/3) / 3 = 11/18
        means = w.mean(0)
        assert abs(float(means[k]) - 11 / 18) < 0.005
        assert all(abs(float(means[j]) - 7 / 36) < 0.005 for j in range(3) if j != k)
    mixed = cd.sample_in_regions(torch.tensor([2, 0, 1, 2]), 3, g)
    assert mixed.argmax(-1).tolist() == [2, 0, 1, 2]


def test_with_every_objectives_labels_the_whole_simplex_trains_and_exports(tiny, bt_family, tmp_path):
    """labels "largest" on a Bradley-Terry family: every objective's pairs, each row's loss order in the
    adapter's positions, eps 0, and an export at the target's zero end (refused for a target-labels adapter)."""
    from peft import PeftModel

    from modpo.cli import main
    from modpo.models import load_base
    from modpo.sweep import margin_specs, pairs_of_every_objective, prepare_pairs
    model, tok = tiny
    root, spec, data = bt_family
    target_pairs = prepare_pairs(root, spec, model, tok, data, "positivity", margin_specs(spec), 256, progress=False)
    pairs = pairs_of_every_objective(root, spec, model, tok, target_pairs, 256)
    orders = pairs["loss_order"]
    assert len(pairs) == len(target_pairs) + len(fam.read_pairs(root, "brevity-margins")[1])
    assert set(map(tuple, orders)) == {(0, 1), (1, 0)}  # positivity's labels as is; brevity's weight first
    assert main(["train-conditioned", "--family", str(root), "--labels", "largest", "--steps", "3", "--lora-r", "4",
                 "--lora-alpha", "8", "--no-eval"]) == 0
    tensors, meta = fam.read_conditioned(root, "conditioned")
    assert (meta["conditioning"]["labels"], meta["conditioning"]["eps"], meta["train_pairs"]) == ("largest", 0.0,
                                                                                                  len(pairs))
    assert [0.0, 1.0] in cd.grid_weightings(spec.objective_names, spec.target, 0.0), "both ends are evaluated"
    out = tmp_path / "brevity-end"
    assert main(["export", "--family", str(root), "--weights", "0,1", "--out", str(out)]) == 0
    conditioned, _ = load_base("tiny")
    cd.add_conditioned_lora(conditioned, cd.ConditionedConfig(r=4, alpha=8, n_objectives=2, labels="largest"))
    cd.load_conditioned_state(conditioned, tensors)
    cd.set_weighting(conditioned, [0.0, 1.0])
    ids = tok(["tell me about tea"], return_tensors="pt")
    # the test's own export in tmp_path (safetensors): plain peft loading is what the issue asks
    # a folder this test just exported (safetensors only): loading it with plain peft is what is checked
    plain = PeftModel.from_pretrained(load_base("tiny")[0], str(out)).eval()
    with torch.no_grad():
        torch.testing.assert_close(plain(**ids).logits, conditioned(**ids).logits, atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="unknown labels"):
        cd.ConditionedConfig(labels="votes")


def test_with_labels_all_the_conditioned_adapter_trains_on_the_mixture_over_the_whole_simplex(tiny, bt_family):
    """labels "all": the target's pairs with every objective's reward (data/pairs-all-margins), w ~ Dirichlet(1)
    with eps 0, each pair's loss modpo_mixture_loss at its w, the reward columns in the adapter's order."""
    from transformers import TrainingArguments

    from modpo.cli import main
    from modpo.data import PairCollator
    from modpo.loss import model_sequence_logps, modpo_mixture_loss
    from modpo.models import load_base
    from modpo.sweep import margin_specs, prepare_pairs
    root, spec, data = bt_family
    model, tok = tiny
    prepare_pairs(root, spec, model, tok, data, "positivity", margin_specs(spec), 256, progress=False)
    assert main(["train-conditioned", "--family", str(root), "--labels", "all", "--steps", "3", "--lora-r", "4",
                 "--lora-alpha", "8", "--no-eval"]) == 0
    _, meta = fam.read_conditioned(root, "conditioned")
    pairs = fam.read_pairs(root, "all-margins")[1]
    assert (meta["conditioning"]["labels"], meta["conditioning"]["eps"], meta["conditioning"]["distribution"],
            meta["train_pairs"], meta["conditioning"]["loss"]) == ("all", 0.0, "Dirichlet(1)", len(pairs),
                                                                   "sum_j w_j^2 L_j")
    assert len(pairs[0]["margin_chosen_rewards"]) == 2 and len(meta["loss_curve"]) == 3
    # the trainer's loss on a batch is the mixture at each pair's sampled w (its generator replayed), on a fresh
    # copy of the tiny model (the fixture's stays unconditioned)
    model, _ = load_base("tiny")
    cd.add_conditioned_lora(model, cd.ConditionedConfig(r=4, alpha=8, n_objectives=2, labels="all"))
    trainer = cd.make_trainer_class()(model=model, args=TrainingArguments(output_dir=str(root / "t"), report_to=[]),
                            beta=1.0, n_objectives=2, eps=0.0, seed=5, reward_order=[0, 1])
    batch = PairCollator(0)([pairs[i] for i in range(3)])
    loss = trainer.compute_loss(model, batch)
    w = cd.sample_weightings(3, 2, 0.0, torch.Generator().manual_seed(5))
    cd.set_weighting(model, torch.cat([w, w]))
    logps = model_sequence_logps(model, batch["input_ids"], batch["attention_mask"], batch["labels"])
    expected = modpo_mixture_loss(logps[:3], logps[3:], batch["reference_chosen_logps"],
                                  batch["reference_rejected_logps"], batch["margin_chosen_rewards"],
                                  batch["margin_rejected_rewards"], w.double(), 1.0).mean()
    torch.testing.assert_close(loss, expected)


def test_each_pair_gets_its_weighting_in_the_adapters_order_and_the_losss():
    g = torch.Generator().manual_seed(0)
    # adapter order (relevance, sentiment, brevity); a sentiment-labelled pair's loss wants (sentiment,
    # relevance, brevity), a brevity-labelled one's (brevity, relevance, sentiment)
    order = torch.tensor([[0, 1, 2], [1, 0, 2], [2, 0, 1]])
    w, w_loss = cd.pair_weightings(3, 3, 0.0, g, order)
    assert w.argmax(-1).tolist() == [0, 1, 2]
    torch.testing.assert_close(w_loss[1], w[1, [1, 0, 2]])
    torch.testing.assert_close(w_loss[2], w[2, [2, 0, 1]])
    assert (w_loss[:, 0] == w.max(-1).values).all(), "every loss divides by its largest weight"
    same, also = cd.pair_weightings(4, 3, 0.05, g)
    assert same is also and (same[:, 0] >= 0.05 - 1e-7).all()
