"""modpo/models.py: loading, adapter names, saving an adapter that loads as is."""
import pytest
import torch

from modpo.models import attach_adapters, load_base, peft_name, save_adapter


def test_peft_names_have_no_dots():
    assert peft_name("w-0.70-0.30") == "w-0_70-0_30"


def test_unknown_model_names_are_refused():
    with pytest.raises(ValueError, match="unknown model 'no-such-model'"):
        load_base("no-such-model")


def test_a_saved_adapter_loads_back_with_the_same_weights(tmp_path):
    from peft import LoraConfig, get_peft_model
    model, _ = load_base("tiny")
    torch.manual_seed(0)
    model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj"], init_lora_weights=False),
                           adapter_name="w-0_50-0_50")
    save_adapter(model, "w-0_50-0_50", tmp_path / "out")
    assert (tmp_path / "out" / "adapter_model.safetensors").is_file()
    assert not (tmp_path / "out" / "w-0_50-0_50").exists(), "the nested folder peft writes is flattened"
    saved = {k: v for k, v in model.state_dict().items() if "lora_B" in k}
    fresh, _ = load_base("tiny")
    loaded = attach_adapters(fresh, {"again": tmp_path / "out"})
    for k, v in loaded.state_dict().items():
        if "lora_B" in k:
            torch.testing.assert_close(v, saved[k.replace("again", "w-0_50-0_50")])
