"""modpo/generate.py: log-probs taken from generation equal a separate forward pass, per adapter."""
import pytest
import torch

from modpo import family as fam
from modpo.generate import BASE, GenerationSettings, generate, response_logps
from modpo.models import attach_adapters, load_base, peft_name

PROMPTS = ["tell me about cats", "how do i cook rice", "give me advice on sleep"]


@pytest.mark.parametrize("settings", [GenerationSettings(max_new_tokens=20),
                                      GenerationSettings(max_new_tokens=20, temperature=1.3, seed=3)],
                         ids=["greedy", "sampled"])
def test_generation_logps_equal_a_forward_pass(tiny_checkpoints, settings):
    family = fam.load_family(tiny_checkpoints / "tiny")
    ids = ["w-0.70-0.30", "w-0.30-0.70"]
    model, tok = load_base("tiny")
    model = attach_adapters(model, {peft_name(i): family.point(i).path for i in ids})
    names = [BASE, peft_name(ids[0]), peft_name(ids[1])] * len(PROMPTS)
    prompts = [p for p in PROMPTS for _ in range(3)]
    outputs = generate(model, tok, prompts, names, settings, batch_size=4, with_logps=True)
    from_generation = torch.tensor([o["logp"] for o in outputs])
    forward = response_logps(model, tok, prompts, [o["response_ids"] for o in outputs], names, batch_size=5)
    assert torch.allclose(from_generation, forward, atol=1e-3, rtol=1e-4), (from_generation, forward)
    assert (from_generation < 0).all() and from_generation.std() > 0
    plain = generate(model, tok, prompts, names, settings, batch_size=4)
    assert [o["response_ids"] for o in plain] == [o["response_ids"] for o in outputs], "same responses either way"
