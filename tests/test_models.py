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


def test_an_adapter_names_its_base_by_hub_id_and_loads_alone_from_a_hub_mirror(tmp_path, monkeypatch):
    """adapter_config.json names the base model's hub id, not a local cache path: with the hub (here a
    local mirror in the hub cache layout, offline) AutoPeftModelForCausalLM loads the adapter alone, and
    gives the logits of this library's own loading (the offline path)."""
    import json
    import shutil
    import subprocess
    import sys

    from peft import LoraConfig, get_peft_model

    from modpo import models
    monkeypatch.setitem(models.HUB_IDS, "tiny", "modpo-test/tiny-llama")
    model, tok = load_base("tiny")
    torch.manual_seed(0)
    model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                             init_lora_weights=False), adapter_name="a")
    save_adapter(model, "a", tmp_path / "adapter")
    models.record_base_model(tmp_path / "adapter", "tiny")
    config = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "modpo-test/tiny-llama"
    # a hub mirror: the layout huggingface_hub's cache uses, for the repo modpo-test/tiny-llama
    repo = tmp_path / "hub" / "models--modpo-test--tiny-llama"
    shutil.copytree(models.ASSETS / "tiny-llama", repo / "snapshots" / ("0" * 40))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    ids = tok("tell me about cats", return_tensors="pt")["input_ids"]
    expected = attach_adapters(load_base("tiny")[0], {"a": tmp_path / "adapter"})(input_ids=ids).logits
    script = ("import sys, torch; from peft import AutoPeftModelForCausalLM; "
              "m = AutoPeftModelForCausalLM.from_pretrained(sys.argv[1]); "
              "ids = torch.tensor([[int(x) for x in sys.argv[2].split(',')]]); "
              "torch.save(m(input_ids=ids).logits, sys.argv[3])")
    out = tmp_path / "logits.pt"
    env = {"HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin",
           "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "adapter"), ",".join(map(str, ids[0].tolist())),
                           str(out)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    # the tensor file the subprocess above wrote; weights_only=True never unpickles code
    torch.testing.assert_close(torch.load(out, weights_only=True), expected, atol=1e-5, rtol=1e-5)
