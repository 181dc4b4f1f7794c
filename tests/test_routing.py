"""modpo/routing.py: every row through its own adapter in one pass gives what peft's adapter_names gives."""
from unittest import mock

import pytest
import torch

from modpo.generate import GenerationSettings, generate, rows_run
from modpo.models import load_base
from modpo.routing import BASE, per_row_adapters, routable


def tiny_with_adapters(ranks=(8, 4, 16)):
    """The tiny model with len(ranks) random LoRA adapters (B non-zero, so each changes the output); the
    last one leaves out v_proj, so a layer can lack an adapter."""
    from peft import LoraConfig, get_peft_model
    model, tok = load_base("tiny")
    torch.manual_seed(0)
    names = [f"a{i}" for i in range(len(ranks))]
    for i, (name, r) in enumerate(zip(names, ranks)):
        modules = ["q_proj", "k_proj", "o_proj"] if i == len(ranks) - 1 else ["q_proj", "k_proj", "v_proj", "o_proj"]
        cfg = LoraConfig(r=r, lora_alpha=2 * r + i, target_modules=modules, init_lora_weights=False)
        if i == 0:
            model = get_peft_model(model, cfg, adapter_name=name)
        else:
            model.add_adapter(name, cfg)
    return model.eval(), tok, names


def test_routed_logits_equal_peft_adapter_names_row_by_row():
    model, tok, names = tiny_with_adapters()
    rows = [names[0], BASE, names[2], names[1], names[0], names[2]]
    ids = torch.tensor([tok.encode(f"tell me about the number {i}") for i in range(len(rows))])
    assert routable(model, rows)
    with torch.no_grad():
        peft_logits = model(input_ids=ids, adapter_names=rows).logits
        with per_row_adapters(model, rows):
            routed = model(input_ids=ids).logits
        with model.disable_adapter():
            base = model(input_ids=ids).logits
    assert torch.allclose(routed, peft_logits, atol=1e-4), (routed - peft_logits).abs().max()
    assert (routed[0] - base[0]).abs().max() > 1e-2, "the adapters change the output (the check can fail)"
    assert torch.allclose(routed[1], base[1], atol=1e-5), "a base row runs no adapter"
    for h in [m._forward_hooks for m in model.modules()]:
        assert not h, "no hook is left on the model after the block"
    with torch.no_grad():
        assert torch.allclose(model(input_ids=ids, adapter_names=rows).logits, peft_logits), "model unchanged after"


def test_generate_routes_where_it_can_and_keeps_peft_where_a_layer_computes_otherwise():
    model, tok, names = tiny_with_adapters((8, 4))
    rows = [names[0], BASE, names[1]] * 2
    prompts = [p for p in ["tell me about cats", "how do i cook rice"] for _ in range(3)]
    settings = GenerationSettings(max_new_tokens=12)
    routed = generate(model, tok, prompts, rows, settings, batch_size=4, with_logps=True)
    context, kwargs = rows_run(model, rows)
    assert not kwargs and context is not None
    with mock.patch("modpo.generate.routable", lambda model, names: False):  # peft's own path, forced
        assert rows_run(model, rows)[1] == {"adapter_names": rows}
        via_peft = generate(model, tok, prompts, rows, settings, batch_size=4, with_logps=True)
    assert [o["response_ids"] for o in routed] == [o["response_ids"] for o in via_peft]
    assert torch.allclose(torch.tensor([o["logp"] for o in routed]), torch.tensor([o["logp"] for o in via_peft]),
                          atol=1e-3)
    assert len({tuple(o["response_ids"]) for o in routed[:3]}) == 3, "each adapter answers its own way"


@pytest.mark.parametrize("why", ["dora", "modules_to_save", "training", "unknown"])
def test_layers_routing_cannot_compute_are_left_to_peft(why):
    model, tok, names = tiny_with_adapters((8, 4))
    rows = [names[0], names[1]]
    if why == "dora":
        from peft import LoraConfig
        model.add_adapter("d", LoraConfig(r=4, target_modules=["q_proj"], use_dora=True))
        rows = [names[0], "d"]
    elif why == "modules_to_save":
        from peft import LoraConfig
        model.add_adapter("s", LoraConfig(r=4, target_modules=["q_proj"], modules_to_save=["lm_head"]))
        rows = [names[0], "s"]
    elif why == "training":
        model.train()
    else:
        rows = [names[0], "missing"]
    assert not routable(model, rows)
    assert routable(model.eval(), [names[0], names[1]])
