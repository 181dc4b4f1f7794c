"""modpo/train.py on the tiny model: LoRA trains, base stays frozen, seeded runs reproduce."""
import pytest
import torch
from safetensors.torch import load_file

from modpo.config import TrainConfig
from modpo.data import tokenize_pairs
from modpo.margins import MarginSpec, precompute_columns
from modpo.train import train_adapter

CFG = dict(lora_r=8, lora_alpha=16, learning_rate=5e-3, max_steps=12, batch_size=8, max_length=256, warmup_ratio=0.0)


def examples_for(model, tok, prefs):
    pairs = prefs.pairs("positivity")
    examples, _ = tokenize_pairs(pairs, tok, 256)
    by_row = {p.row: p for p in pairs}
    for ex in examples:
        p = by_row[ex["row"]]
        ex.update(prompt=p.prompt, chosen=p.chosen, rejected=p.rejected)
    return precompute_columns(model, examples, tok.pad_token_id,
                              [MarginSpec("brevity", "explicit", scorer="brevity", scale=0.01)], 0.1)


def test_lora_changes_base_frozen_and_loss_falls(tmp_path, tiny, tiny_prefs):
    model, tok = tiny
    base_before = {k: v.clone() for k, v in model.state_dict().items()}
    examples = examples_for(model, tok, tiny_prefs)
    record, peft_model = train_adapter(model, examples, [0.6, 0.4], TrainConfig(**CFG), tmp_path / "a", "w")
    assert record["steps"] == 12 and len(record["loss_curve"]) == 12
    losses = [loss for _, loss in record["loss_curve"]]
    assert sum(losses[-4:]) / 4 < sum(losses[:4]) / 4, f"MODPO loss did not fall: {losses}"
    saved = load_file(str(tmp_path / "a" / "adapter_model.safetensors"))
    lora_b = [v for k, v in saved.items() if "lora_B" in k]
    assert lora_b and all(v.abs().max() > 0 for v in lora_b), "LoRA B starts at zero and must have moved"
    base = peft_model.get_base_model().state_dict()
    for k, v in base_before.items():
        torch.testing.assert_close(
            base[k.replace(".weight", ".base_layer.weight")]
            if k.replace(".weight", ".base_layer.weight") in base
            else base[k],
            v,
            rtol=0,
            atol=0,
        )


def test_seeded_runs_reproduce(tmp_path, tiny_prefs):
    from modpo.models import load_base
    outs = []
    for run in range(2):
        model, tok = load_base("tiny")
        examples = examples_for(model, tok, tiny_prefs)
        train_adapter(model, examples, [0.5, 0.5], TrainConfig(**{**CFG, "max_steps": 4}), tmp_path / str(run), "w")
        outs.append(load_file(str(tmp_path / str(run) / "adapter_model.safetensors")))
    assert outs[0].keys() == outs[1].keys()
    for k in outs[0]:
        torch.testing.assert_close(outs[0][k], outs[1][k], rtol=0, atol=0)


def test_saved_adapter_loads_with_plain_peft(tmp_path, tiny, tiny_prefs):
    from peft import PeftModel

    from modpo.models import load_base
    model, tok = tiny
    examples = examples_for(model, tok, tiny_prefs)
    _, trained = train_adapter(model, examples, [0.5, 0.5], TrainConfig(**{**CFG, "max_steps": 3}), tmp_path / "a", "w")
    fresh, _ = load_base("tiny")
    loaded = PeftModel.from_pretrained(fresh, str(tmp_path / "a"))
    ids = torch.tensor([examples[0]["prompt_ids"] + examples[0]["chosen_ids"]])
    trained.eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(input_ids=ids).logits, trained(input_ids=ids).logits, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("override, message", [
    ({"beta": 0}, "beta must be a finite number > 0"), ({"lora_r": 0}, "lora_r"),
    ({"learning_rate": 2.0}, "learning_rate"),
    ({"max_steps": 0}, "max_steps"), ({"batch_size": 0}, "batch_size"), ({"max_length": 4}, "max_length"),
])
def test_bad_config_is_rejected(override, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**override)


def test_weights_must_match_margin_columns(tmp_path, tiny, tiny_prefs):
    model, tok = tiny
    examples = examples_for(model, tok, tiny_prefs)
    with pytest.raises(ValueError, match="3 entries but the data carries 1 margin"):
        train_adapter(model, examples, [0.5, 0.25, 0.25], TrainConfig(**CFG), tmp_path / "a", "w")


def test_the_trainer_uses_the_labels_probabilities(tmp_path, tiny_prefs):
    # DPO with chosen_probs p: at p = 0.5 every pair's expected loss is flat at the start (h = 0 while LoRA
    # B = 0; only float noise between the training and the precomputed reference passes), so the adapter
    # hardly moves; at p = 1 it is plain DPO, which moves it
    from modpo.models import load_base
    moved = {}
    for p in (0.5, 1.0):
        model, tok = load_base("tiny")
        examples, _ = tokenize_pairs(tiny_prefs.pairs("positivity"), tok, 256)
        examples = [{**ex, "chosen_probs": p} for ex in precompute_columns(model, examples, tok.pad_token_id, [], 1.0)]
        cfg = TrainConfig(**{**CFG, "max_steps": 3, "beta": 1.0})
        train_adapter(model, examples, [1.0], cfg, tmp_path / str(p), "w")
        saved = load_file(str(tmp_path / str(p) / "adapter_model.safetensors"))
        moved[p] = max(float(v.abs().max()) for k, v in saved.items() if "lora_B" in k)
    assert moved[1.0] > 0 and moved[0.5] < 0.1 * moved[1.0], moved
